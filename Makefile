# digitlab: one venv, one command per job.  `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# In this project's workspace the MNIST files lie beside the checkout; elsewhere the
# per-user default (~/.cache/digitlab/mnist) is used and filled by the first download.
ifneq ($(wildcard ../shared/mnist/train-images-idx3-ubyte.gz),)
export DIGITLAB_DATA_DIR ?= $(abspath ../shared/mnist)
endif

.PHONY: help run test lint typecheck unit stack-test bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-train: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[train]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-train
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@

run: $(VENV)/.installed-train  ## set up, train a model if none exists, run the main job
	$(BIN)/digitlab run

test: lint typecheck unit  ## set up and run the whole suite: lint, types, tests

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest

stack-test: $(VENV)/.installed-dev  ## build the images, run the real Compose stack and test it (needs Docker)
	$(BIN)/pytest -m stack tests/stack -v -s

bench: $(VENV)/.installed-dev  ## training benchmark against the reference recipe
	$(BIN)/python bench/train.py

clean:  ## remove the venv, local models, reports and caches
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
