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
	$(PY) -m tfambient.synthetic --corpus_dir $(DEMO_DIR)/corpus --clips_per_kind 10
	$(VENV)/bin/tfambient-prepare --audioset $(DEMO_DIR)/corpus/segments.csv \
		--media_dir $(DEMO_DIR)/corpus/clips --output_dir $(DEMO_DIR)/data \
		--frames_per_clip 2 --num_clusters 3,6 --num_bits 8
	$(VENV)/bin/tfrecords-inspect $(DEMO_DIR)/data

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
