# Every target sets up what it needs: on a fresh machine `make demo` and `make test` are enough.
PYTHON ?= python3
# Not from the environment (`make clean` removes them; a shell's own $VENV is often a user's venv):
# `make VENV=…` on the command line still sets them.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR := runs/demo
OLD_PYTHON := import sys; sys.exit(sys.version_info < (3, 10))
DEMO_EPOCHS ?= 12
# A package index to take torch and torchvision from before the rest, e.g. PyTorch's CPU-only
# builds: make TORCH_INDEX=https://download.pytorch.org/whl/cpu demo (PyPI's torch is the CUDA one).
TORCH_INDEX ?=

.PHONY: install test lint format demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || command -v $(PYTHON) >/dev/null || { \
		echo "make: no $(PYTHON) here; acgan needs Python 3.10 or newer: make PYTHON=python3.11 ..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -c '$(OLD_PYTHON)' || { \
		echo "make: $(PYTHON) is Python $$($(PYTHON) -V 2>&1 | cut -d' ' -f2); acgan needs 3.10 or newer: make PYTHON=python3.11 ..."; exit 1; }
	@test ! -x $(BIN)/python || $(BIN)/python -c '$(OLD_PYTHON)' || { \
		echo "make: $(VENV) holds Python $$($(BIN)/python -V 2>&1 | cut -d' ' -f2), older than 3.10: rm -rf $(VENV), then make PYTHON=python3.11 ..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --quiet torch torchvision --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Trains on the 5,000 shipped MNIST digits on the CPU (offline), then draws a grid.
demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(BIN)/acgan train --dataset mnist-5k --epochs $(DEMO_EPOCHS) --device cpu --seed 1 --out $(DEMO_DIR)
	$(BIN)/acgan sample --ckpt $(DEMO_DIR) --grid --seed 0 --out $(DEMO_DIR)/grid.png
	@echo "demo: the sample grid is $(DEMO_DIR)/grid.png (one row per digit)"

bench: $(STAMP)
	$(BIN)/python bench/cpu.py

# Build and tool leftovers and the venv; never ./runs, where `acgan train` keeps the user's runs.
clean:
	rm -rf $(VENV) $(DEMO_DIR) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
