# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
# One virtualenv per interpreter: `make test PYTHON=python3.13` builds .venv-python3.13 and
# leaves .venv alone. A pyenv shim such as python3.13 runs only the versions pyenv selects
# (.python-version pins one, for Heroku), so the venv is made again with PYENV_VERSION=3.13.
VENV ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
PYENV_PYTHON := PYENV_VERSION=$(patsubst python%,%,$(notdir $(PYTHON))) $(PYTHON)
# Arguments for pytest: `make test PYTEST_ARGS="tests/test_config.py"` runs a subset.
PYTEST_ARGS ?=
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Settings in .env (PORT, REDIS_URL, ...) count for make too.
-include .env
PORT ?= 8000

LLM_VENV := .venv-llm

.PHONY: install run test test-llm bench screenshots lint format clean

$(INSTALLED): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) 2>/dev/null || $(PYENV_PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(INSTALLED) ## Create .venv and install the pinned requirements

run: install ## Start Redis (embedded unless REDIS_URL is set), web and worker; Ctrl-C stops all
	$(BIN)/flask --app wsgi db upgrade
	@echo "API docs: http://127.0.0.1:$(PORT)/docs/  (Ctrl-C stops everything)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile.dev start --port $(PORT)

test: install ## Run the whole suite against real Redis, workers and a fake LLM server
	$(BIN)/python -m pytest $(PYTEST_ARGS)

$(LLM_VENV)/.installed: requirements-llm.txt
	@test -x $(LLM_VENV)/bin/python || $(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/python -m pip install --disable-pip-version-check -r requirements-llm.txt
	@touch $@

test-llm: install $(LLM_VENV)/.installed ## Opt-in, not in `make test`: jobs through a real small model (SmolLM2-135M on llama.cpp)
	LLM_SERVER_PYTHON=$(CURDIR)/$(LLM_VENV)/bin/python $(BIN)/python -m pytest tests_llm -s -p no:cacheprovider --no-cov

bench: install ## Measure the real stack under load, then the offline provider's output quality (a few minutes)
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; } || true
	@command -v wrk >/dev/null || echo "wrk is not installed (apt-get install wrk): ingest will be skipped"
	$(BIN)/python bench/run.py
	@echo
	$(BIN)/python bench/quality/evaluate.py

screenshots: install ## Refresh docs/console.png and docs/admin.png from the real pages (needs chromium)
	$(BIN)/python scripts/screenshots.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(LLM_VENV) .pytest_cache .coverage htmlcov
