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

# The whole experiment, small: a synthetic world -> prepare -> pretext training on texture and
# on MFCC clusters -> VOC transfer of both and of a random backbone -> linear probes of every
# layer of the three on the world's scene pictures -> report. Rerunning resumes;
# DEMO_FLAGS=flags/demo_ci is the miniature the end-to-end test runs; SEED varies it.
DEMO_FLAGS ?= flags/demo
SEED ?= 0
BIN := $(VENV)/bin
# The pretext labels follow from what prepare.flags asks for: texture and MFCC clusters of
# the K given there (the flagfile and this list cannot disagree).
DESCRIPTORS := texture mfcc
K = $(shell sed -n 's/^--num_clusters=//p' $(DEMO_FLAGS)/prepare.flags)
LABELS = $(foreach descriptor,$(DESCRIPTORS),$(descriptor)_k$(K))
# The random baseline is the pretext runs' AlexNet, as wide as train.flags makes it.
FC_UNITS = $(shell sed -n 's/^--fc_units=//p' $(DEMO_FLAGS)/train.flags)

demo: $(INSTALLED)
	@test -n "$(K)" || { echo "$(DEMO_FLAGS)/prepare.flags names no --num_clusters=K"; exit 2; }
	@test -n "$(FC_UNITS)" || { echo "$(DEMO_FLAGS)/train.flags names no --fc_units=N"; exit 2; }
	$(BIN)/tfambient-synth --flagfile=$(DEMO_FLAGS)/synth.flags --output_dir=$(DEMO_DIR)/world \
		--seed=$(SEED)
	$(BIN)/tfambient-prepare --flagfile=$(DEMO_FLAGS)/prepare.flags --seed=$(SEED) \
		--audioset=$(DEMO_DIR)/world/corpus/segments.csv \
		--media_dir=$(DEMO_DIR)/world/corpus/clips --output_dir=$(DEMO_DIR)/data
	for label in $(LABELS); do \
		$(BIN)/tfambient-train --flagfile=$(DEMO_FLAGS)/train.flags --label=$$label \
			--seed=$(SEED) --data_dir=$(DEMO_DIR)/data --workdir=$(DEMO_DIR)/runs/$$label \
			|| exit 1; \
	done
	for label in $(LABELS); do \
		$(BIN)/tfambient-voc --flagfile=$(DEMO_FLAGS)/voc.flags --seed=$(SEED) \
			--voc_dir=$(DEMO_DIR)/world/VOCdevkit --backbone=$(DEMO_DIR)/runs/$$label \
			--workdir=$(DEMO_DIR)/voc/$$label || exit 1; \
	done
	$(BIN)/tfambient-voc --flagfile=$(DEMO_FLAGS)/voc.flags --seed=$(SEED) \
		--voc_dir=$(DEMO_DIR)/world/VOCdevkit --backbone=random --arch=alexnet \
		--fc_units=$(FC_UNITS) \
		--workdir=$(DEMO_DIR)/voc/random
	for label in $(LABELS); do \
		$(BIN)/tfambient-probe --flagfile=$(DEMO_FLAGS)/probe.flags --seed=$(SEED) \
			--train_dir=$(DEMO_DIR)/world/scenes/train --val_dir=$(DEMO_DIR)/world/scenes/val \
			--backbone=$(DEMO_DIR)/runs/$$label --workdir=$(DEMO_DIR)/probe/$$label || exit 1; \
	done
	$(BIN)/tfambient-probe --flagfile=$(DEMO_FLAGS)/probe.flags --seed=$(SEED) \
		--train_dir=$(DEMO_DIR)/world/scenes/train --val_dir=$(DEMO_DIR)/world/scenes/val \
		--backbone=random --arch=alexnet --fc_units=$(FC_UNITS) \
		--workdir=$(DEMO_DIR)/probe/random
	$(BIN)/tfambient-report --flagfile=$(DEMO_FLAGS)/report.flags --output=$(DEMO_DIR)/report \
		$(addprefix $(DEMO_DIR)/runs/,$(LABELS)) $(addprefix $(DEMO_DIR)/voc/,$(LABELS) random) \
		$(addprefix $(DEMO_DIR)/probe/,$(LABELS) random)

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
