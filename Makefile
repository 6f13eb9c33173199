# Every target sets up what it needs: on a fresh machine `make demo` and `make test` are enough.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= runs/demo
DEMO_EPOCHS ?= 12

.PHONY: install test lint format demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
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
