# trialkit: `make help` lists the targets. Everything runs inside .venv, created by `make setup`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLAN ?= data/studies/example-precision-release.yaml
STUDY ?= example-precision-release
OUT ?= reports/$(STUDY)
PYTEST_ARGS ?=

.PHONY: help setup demo test lint architecture report bench fixtures clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install trialkit with its test tools

demo: $(STAMP) ## Set up, then run the full pipeline on the bundled (simulated) example trial
	$(BIN)/trialkit run $(PLAN) --out $(OUT)

report: $(STAMP) ## Re-run the pipeline and render the report for PLAN (default: the example trial)
	$(BIN)/trialkit run $(PLAN) --out $(OUT)

test: architecture ## Check the architecture rules, then run the test suite
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: architecture ## Check style (ruff) and the architecture rules
	$(BIN)/ruff check analysis tests benchmarks

architecture: $(STAMP) ## Imports flow one way, no cycles (import-linter); no module over 600 lines
	$(BIN)/lint-imports --no-cache
	@find analysis -name '*.py' -print0 | xargs -0 wc -l | awk '$$2 != "total" && $$1 > 600 \
		{ print "module over 600 lines: " $$2 " (" $$1 ")"; bad = 1 } END { exit bad }'

bench: $(STAMP) ## Run the benchmarks (ours against the peers, ratios printed)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

fixtures: $(STAMP) ## Regenerate the bundled (simulated) example trial and its REDCap and ADaM forms
	$(BIN)/python -m analysis.replicate.fixtures

clean: ## Remove generated reports and caches (keeps .venv)
	rm -rf reports .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
