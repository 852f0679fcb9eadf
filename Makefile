# The two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

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
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: venv redis
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench
