# Developer entry points. `make run` serves the example app; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8080
BIN := $(VENV)/bin

.PHONY: run reload test lint typecheck pytest services bench bench-details bench-instructions docs clean

# The venv is rebuilt when the packages' definitions change; [dev] includes [all], as the image.
$(BIN)/.installed: pyproject.toml acceptance_tests/app/pyproject.toml acceptance_tests/app_legacy/setup.py
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e acceptance_tests/app -e acceptance_tests/app_legacy
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

## test-prometheus-versions: the Prometheus merge against every prometheus_client series it is used with
.PHONY: test-prometheus-versions
test-prometheus-versions: $(BIN)/.installed
	BIN=$(BIN) scripts/prometheus-versions.sh

## test-unit: the tests that need no service and start no server (tests/unit, under a minute)
.PHONY: test-unit
test-unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

## services: what the tests need beyond PostgreSQL and Redis (a streaming replica on port 5433)
services:
	scripts/pg-replica.sh

## bench-instructions: instructions per request counted by valgrind, deterministic (a few minutes)
bench-instructions: $(BIN)/.installed
	$(BIN)/python bench/instructions.py

## load: the long reliability runs (docs/reliability.md): wrk for 60 s at 64 connections, then with
## 5 reloads; hostile input with 3000 examples per property (needs wrk, PostgreSQL, Redis; ~15 min)
.PHONY: load
load: $(BIN)/.installed services
	C2C_HOSTILE_EXAMPLES=3000 $(BIN)/pytest -p no:cacheprovider -s acceptance_tests/load \
		acceptance_tests/tests/test_hostile_input.py

## docs: regenerate the settings tables of docs/*.md from the settings declarations
docs: $(BIN)/.installed
	$(BIN)/python -m c2cwsgiutils.settings_catalogue docs/*.md

## bench: what the whole toolkit costs against bare Pyramid (README "Performance"; needs wrk, PostgreSQL; ~10 min)
bench: $(BIN)/.installed
	$(BIN)/python bench/run.py

## bench-details: each feature's own benchmark, with more cases than bench/run.py's table
bench-details: $(BIN)/.installed
	$(BIN)/python bench/foundation.py
	$(BIN)/python bench/logging_json.py
	$(BIN)/python bench/stats.py
	$(BIN)/python bench/db.py
	$(BIN)/python bench/health_check.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info acceptance_tests/app/*.egg-info \
		acceptance_tests/app_legacy/*.egg-info

# Docker image (README, "Docker image"). `make image` builds with docker where an engine answers,
# else with buildah on a debootstrapped Debian; `make acceptance-image` always uses buildah, whose
# working containers the test runs on the host network.
IMAGE ?= camptocamp/c2cwsgiutils
APP_IMAGE ?= c2cwsgiutils-app:latest
LEGACY_IMAGE ?= c2cwsgiutils-app-legacy:latest

.PHONY: image acceptance-image acceptance-compose publish

## image: build the base image ($(IMAGE):latest) and the example apps' images ($(APP_IMAGE), $(LEGACY_IMAGE))
image:
	IMAGE=$(IMAGE):latest APP_IMAGE=$(APP_IMAGE) LEGACY_IMAGE=$(LEGACY_IMAGE) scripts/image-build.sh

## acceptance-image: build the images with buildah; the image tests, the example app's and the legacy app's
## suites in containers
acceptance-image: $(BIN)/.installed
	IMAGE_BUILDER=buildah IMAGE=$(IMAGE):latest APP_IMAGE=$(APP_IMAGE) LEGACY_IMAGE=$(LEGACY_IMAGE) \
		scripts/image-build.sh
	C2C_TEST_IMAGE=$(APP_IMAGE) C2C_TEST_LEGACY_IMAGE=$(LEGACY_IMAGE) $(BIN)/pytest -p no:cacheprovider \
		--c2c-composition image acceptance_tests/tests/test_image.py acceptance_tests/tests/test_example_app.py \
		acceptance_tests/tests/test_example_app_db.py acceptance_tests/tests_legacy

## acceptance-compose: with a Docker engine, the composition (two app containers, Redis, primary and replica)
acceptance-compose: image
	docker compose -f acceptance_tests/docker-compose.yaml up --build --abort-on-container-exit \
		--exit-code-from acceptance; status=$$?; \
	docker compose -f acceptance_tests/docker-compose.yaml down --volumes; exit $$status

## publish: push $(IMAGE) under this branch's or tag's tags (scripts/image_tags.py); DRY_RUN=1 only says
publish:
	IMAGE=$(IMAGE) PYTHON=$(PYTHON) scripts/image-publish.sh
