# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Settings in .env (PORT, REDIS_URL, ...) count for make too.
-include .env
PORT ?= 8000

LLM_VENV := .venv-llm

.PHONY: install run test test-llm bench lint format clean

$(INSTALLED): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(INSTALLED) ## Create .venv and install the pinned requirements

run: install ## Start Redis (embedded unless REDIS_URL is set), web and worker; Ctrl-C stops all
	$(BIN)/flask --app wsgi db upgrade
	@echo "API docs: http://127.0.0.1:$(PORT)/docs/  (Ctrl-C stops everything)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile.dev start --port $(PORT)

test: install ## Run the whole suite against real Redis, workers and a fake LLM server
	$(BIN)/python -m pytest

$(LLM_VENV)/.installed: requirements-llm.txt
	@test -x $(LLM_VENV)/bin/python || $(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/python -m pip install --disable-pip-version-check -r requirements-llm.txt
	@touch $@

test-llm: install $(LLM_VENV)/.installed ## Opt-in, not in `make test`: jobs through a real small model (SmolLM2-135M on llama.cpp)
	LLM_SERVER_PYTHON=$(CURDIR)/$(LLM_VENV)/bin/python $(BIN)/python -m pytest tests_llm -s -p no:cacheprovider --no-cov

bench: install ## Measure the real stack under load and print a markdown table (a few minutes)
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; } || true
	@command -v wrk >/dev/null || echo "wrk is not installed (apt-get install wrk): ingest will be skipped"
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(LLM_VENV) .pytest_cache .coverage htmlcov
