# The README's commands. `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: demo test bench lint clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(INSTALLED)
	$(PY) -m tfambient.synthetic --output $(DEMO_DIR)/rain_and_engine.mp4
	$(VENV)/bin/tfambient-describe --descriptors=texture,mfcc,mfcc_summary $(DEMO_DIR)/rain_and_engine.mp4

test: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile -q

bench: $(INSTALLED)
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .ruff_cache
