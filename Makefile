# The README's commands. `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: demo test bench gpu-check lint clean

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
# The random baseline is the pretext runs' backbone: train.flags' --arch, --fc_units and
# --width (each at its default where train.flags leaves it out).
BACKBONE_FLAGS = $(shell grep -E '^--(arch|fc_units|width)=' $(DEMO_FLAGS)/train.flags)

demo: $(INSTALLED)
	@test -n "$(K)" || { echo "$(DEMO_FLAGS)/prepare.flags names no --num_clusters=K"; exit 2; }
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
		--voc_dir=$(DEMO_DIR)/world/VOCdevkit --backbone=random $(BACKBONE_FLAGS) \
		--workdir=$(DEMO_DIR)/voc/random
	for label in $(LABELS); do \
		$(BIN)/tfambient-probe --flagfile=$(DEMO_FLAGS)/probe.flags --seed=$(SEED) \
			--train_dir=$(DEMO_DIR)/world/scenes/train --val_dir=$(DEMO_DIR)/world/scenes/val \
			--backbone=$(DEMO_DIR)/runs/$$label --workdir=$(DEMO_DIR)/probe/$$label || exit 1; \
	done
	$(BIN)/tfambient-probe --flagfile=$(DEMO_FLAGS)/probe.flags --seed=$(SEED) \
		--train_dir=$(DEMO_DIR)/world/scenes/train --val_dir=$(DEMO_DIR)/world/scenes/val \
		--backbone=random $(BACKBONE_FLAGS) \
		--workdir=$(DEMO_DIR)/probe/random
	$(BIN)/tfambient-report --flagfile=$(DEMO_FLAGS)/report.flags --output=$(DEMO_DIR)/report \
		$(addprefix $(DEMO_DIR)/runs/,$(LABELS)) $(addprefix $(DEMO_DIR)/voc/,$(LABELS) random) \
		$(addprefix $(DEMO_DIR)/probe/,$(LABELS) random)

test: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile -q

bench: $(INSTALLED)
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

# On a machine with a GPU (not run in CI; under 5 minutes): AlexNet's and ResNet-18's training
# step in images/s (batch 256, 224 px; float32, mixed_bfloat16, mixed_float16; XLA off and on),
# the input pipeline's images/s beside them, one GPU against all local GPUs (loss parity,
# scaling); printed, and written to GPU_CHECK_OUTPUT. Without a GPU: one line, exit status 0.
# A GPU that TensorFlow cannot use (no CUDA libraries: pip install -e '.[gpu]'): exit status 2.
GPU_CHECK_OUTPUT ?= gpu-check.json

gpu-check: $(INSTALLED)
	$(PY) benchmarks/gpu_check.py --output=$(GPU_CHECK_OUTPUT)

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .ruff_cache
