# digitlab: one venv, one command per job.  `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# In this project's workspace the MNIST files lie beside the checkout; elsewhere the
# per-user default (~/.cache/digitlab/mnist) is used and filled by the first download.
ifneq ($(wildcard ../shared/mnist/train-images-idx3-ubyte.gz),)
export DIGITLAB_DATA_DIR ?= $(abspath ../shared/mnist)
endif

.PHONY: help run test lint typecheck docs docs-serve unit stack-test bench clean system-run system-test

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/activate:
	PYTHON=$(PYTHON) scripts/system-packages run
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-train: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[train]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-train
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@

run: system-run $(VENV)/.installed-train  ## set up, train a model if none exists, run the main job
	$(BIN)/digitlab run

test: system-test lint typecheck docs unit  ## set up and run the whole suite: lint, types, docs, tests

# System packages (Python venv; for the tests also PostgreSQL, Chromium, Fashion-MNIST):
# installed when this user may, else one line saying which apt-get command to run.
system-run system-test:
	PYTHON=$(PYTHON) scripts/system-packages $(@:system-%=%)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench docs/gen examples
	$(BIN)/ruff format --check src tests bench docs/gen examples

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The documentation site. --strict: a broken link, a missing page or a failing reference
# generator fails the build. The two variables quiet banners the plugins print.
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true
docs: $(VENV)/.installed-dev  ## build the documentation site into site/
	$(DOCS_ENV) $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(VENV)/.installed-dev  ## serve the documentation on http://127.0.0.1:8001/, rebuilt on change
	$(DOCS_ENV) $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

# A worker per core: the suite alone keeps one core busy. A file stays on one worker, so
# its module fixtures (a served app, a browser) start once. The slowest tests are listed
# at the end, so a CI log shows where the ~10 minutes go.
unit: system-test $(VENV)/.installed-dev
	$(BIN)/pytest -n auto --dist loadfile --durations=15

stack-test: $(VENV)/.installed-dev  ## build the images, run the real Compose stack and test it (needs Docker)
	$(BIN)/pytest -m stack tests/stack -v -s

bench: $(VENV)/.installed-dev  ## training benchmark against the reference recipe
	$(BIN)/python bench/train.py

clean:  ## remove the venv, local models, reports and caches
	rm -rf $(VENV) var site .pytest_cache .mypy_cache .ruff_cache
