# Developer entry points. `make run` serves the example app; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8080
BIN := $(VENV)/bin

.PHONY: run reload test lint typecheck pytest services bench docs clean

# The venv is rebuilt when the packages' definitions change; [dev] includes [all], as the image.
$(BIN)/.installed: pyproject.toml acceptance_tests/app/pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e acceptance_tests/app
	touch $@

## run: serve the example app with c2cwsgiutils_run on http://localhost:$(PORT) (pid file per port)
run: $(BIN)/.installed
	C2CWSGIUTILS_CONFIG=$(CURDIR)/acceptance_tests/app/production.ini \
	GUNICORN_BIND=$${GUNICORN_BIND:-:$(PORT)} \
	C2CWSGIUTILS_PID_FILE=$${C2CWSGIUTILS_PID_FILE:-/tmp/c2cwsgiutils-$(PORT).pid} \
	$(BIN)/c2cwsgiutils_run

## reload: make the server of `make run` (same PORT) reload its workers gracefully
reload: $(BIN)/.installed
	$(BIN)/c2cwsgiutils_reload --pid-file $${C2CWSGIUTILS_PID_FILE:-/tmp/c2cwsgiutils-$(PORT).pid}

## test: lint, types, then every test (unit, integration, acceptance)
test: lint typecheck services pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/pytest

## services: what the tests need beyond PostgreSQL and Redis (a streaming replica on port 5433)
services:
	scripts/pg-replica.sh

## docs: regenerate README's settings tables from the settings declarations
docs: $(BIN)/.installed
	$(BIN)/python -m c2cwsgiutils.settings_catalogue README.md

## bench: what the toolkit adds per request, against bare Pyramid
bench: $(BIN)/.installed
	$(BIN)/python bench/foundation.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info acceptance_tests/app/*.egg-info
