# Two commands a new user needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test check lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,ray,tracking,export]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/scalarize demo

# the whole suite: on two pytest-xdist workers, then the Ray and killed-process tests alone, one
# at a time (tests/conftest.py says why); JOBS=1 runs it all in one process
JOBS ?= 2
test: lint
ifeq ($(JOBS),1)
	$(BIN)/python -m pytest
else
	$(BIN)/python -m pytest -m "not serial" -n $(JOBS) --dist loadgroup
	$(BIN)/python -m pytest -m serial
endif

# the fast loop while working: lint, contracts, types and every test not marked slow (no Ray,
# no killed processes: the tests spread one by one over the workers)
check: lint
	$(BIN)/python -m pytest -m "not slow" $(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist load)

# ruff, the architecture contracts (pyproject's [tool.importlinter]) and the type checker
lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-runs .pytest_cache
