# The two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Tests run side by side: most of a test's time is spent waiting on the processes it starts,
# so 4 share 2 cores well. One at a time: `make test TEST_PROCESSES=0`. One test per hand-out
# (--maxschedchunk 1), so the long tests, which run first, spread over every process.
TEST_PROCESSES ?= 4

.PHONY: venv redis test lint demo bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

redis:
	@command -v redis-server >/dev/null || .ci/install-redis

demo: venv redis
	$(BIN)/dialer demo

test: venv redis
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -n $(TEST_PROCESSES) --maxschedchunk 1

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff format --check .

bench: venv redis
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench
