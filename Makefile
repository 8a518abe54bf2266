# Two commands a new user needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,ray,tracking]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/scalarize demo

test: lint
	$(BIN)/python -m pytest

# ruff, the architecture contracts (pyproject's [tool.importlinter]) and the type checker
lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-runs .pytest_cache
