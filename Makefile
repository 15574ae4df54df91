# Reliability Studio. `make run` serves the API on SQLite; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 9000

.PHONY: run test test-deps lint typecheck pytest bench bench-quick fuzz lock clean

## run: install from the lock file, migrate, and serve the API on $PORT (SQLite under ./data/)
run: $(VENV)/.runtime
	mkdir -p data
	$(BIN)/reliability-studio serve

## test: install what the tests need, then lint, type-check and run the whole suite
test: $(VENV)/.dev test-deps lint typecheck pytest

test-deps:
	./scripts/install-test-deps.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev
	$(BIN)/pytest

## bench: the benchmarks (never part of `make test`); results go to bench/results/
bench: $(VENV)/.dev test-deps
	$(BIN)/python -W ignore::DeprecationWarning -m bench.scale
	$(BIN)/python -W ignore::DeprecationWarning -m bench.slo_engine --slos 1000
	$(BIN)/python -W ignore::DeprecationWarning -m bench.alert_ingest
	$(BIN)/python -W ignore::DeprecationWarning -m bench.rca_quality --repeat 5
	$(BIN)/python -W ignore::DeprecationWarning -m bench.drain_throughput --lines 1000000
	$(BIN)/python -W ignore::DeprecationWarning -m bench.notify_throughput
	$(BIN)/python -W ignore::DeprecationWarning -m bench.live_fanout

## fuzz: the deep Schemathesis run (`make test` runs a bounded one); FUZZ_SEED=n replays one
fuzz: $(VENV)/.dev test-deps
	FUZZ_PROFILE=deep $(BIN)/pytest tests/fuzz

## bench-quick: the scale benchmark at a tenth of the data (100 k incidents), for iterating
bench-quick: $(VENV)/.dev test-deps
	$(BIN)/python -W ignore::DeprecationWarning -m bench.scale --quick

## lock: regenerate the lock files from pyproject.toml (after changing dependencies)
lock: $(VENV)/.dev
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q -o requirements-dev.lock

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $@ $(VENV)/.runtime

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
