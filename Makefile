# Two commands a new user needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test check lint clean test-flaky

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# installed by uv (pinned in constraints.txt), bytecode compiled as pip does (this machine sets
# PYTHONDONTWRITEBYTECODE: without it every process compiles torch again); uv reads no pip.conf, so
# pip's wheel folder (where this machine keeps torch's CPU build) is handed over
FIND_LINKS := $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(foreach d,$(FIND_LINKS),--find-links $(d)) \
		-c constraints.txt -e ".[dev,ray,tracking,export]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/scalarize demo

# the whole suite on two pytest-xdist workers: the tests that start Ray or kill processes after
# the others (tests/conftest.py says why), each module one group; JOBS=1 runs it all in one process
JOBS ?= 2
test: lint
ifeq ($(JOBS),1)
	$(BIN)/python -m pytest
else
	$(BIN)/python -m pytest -m "not processes" -n $(JOBS) --dist loadgroup --no-loadscope-reorder
	$(BIN)/python -m pytest -m processes -n $(JOBS) --dist loadgroup --no-loadscope-reorder
endif

# the fast loop while working: lint, contracts, types and every test not marked slow (no Ray,
# no killed processes: the tests spread one by one over the workers)
check: lint
	$(BIN)/python -m pytest -m "not slow" $(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist load)

# the modules where timing could bite (Ray, killed processes, tracking), RUNS times in a row,
# on two workers as in `make test` (issue 32: a flaky test is a defect); stops at the first
# failing pass and says which
RUNS ?= 10
FLAKY := tests/engines/test_ray_population.py tests/engines/test_ray_trials.py tests/schedulers \
	tests/engines/test_ray_train.py tests/engines/test_ray_user_code.py tests/faults tests/tracking
test-flaky: setup
	@for i in $$(seq 1 $(RUNS)); do \
		start=$$(date +%s); \
		$(BIN)/python -m pytest $(FLAKY) -q -p no:cacheprovider \
			$(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist loadgroup --no-loadscope-reorder) \
			> .flaky-$$i.log 2>&1 \
			|| { echo "pass $$i of $(RUNS) failed: see .flaky-$$i.log"; exit 1; }; \
		echo "pass $$i of $(RUNS) green in $$(( $$(date +%s) - start )) s"; rm -f .flaky-$$i.log; \
	done

# ruff, the architecture contracts (pyproject's [tool.importlinter]) and the type checker
lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-runs .pytest_cache
