# The two commands a newcomer needs: `make demo` (set up everything, run every DAG) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SERVICES := scripts/services
# Every Airflow command runs with the local environment (AIRFLOW_HOME in .state/, ports, ...).
WITH_ENV = eval "$$(bash $(SERVICES) env)" && export PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/.state/bootstrap/bin:$$PATH" &&

.PHONY: help setup services-up services-down services-status airflow-init settings sample-data demo test test-unit \
        lint standalone bench clean browser

help:
	@echo "make demo            set up everything and run every DAG once (airflow dags test)"
	@echo "make test            start the services and run all tests"
	@echo "make standalone      run the Airflow UI at http://127.0.0.1:58080 (airflow standalone)"
	@echo "make services-down   stop the local services"
	@echo "make bench           run the benchmarks (bench/)"

# uv from PATH, else bootstrapped into .state/bootstrap (Debian's python3 refuses a global pip install).
$(PY): pyproject.toml
	@command -v uv >/dev/null || [ -x .state/bootstrap/bin/uv ] \
		|| { python3 -m venv .state/bootstrap && .state/bootstrap/bin/pip install -q uv; }
	uv="$$(command -v uv || echo .state/bootstrap/bin/uv)"; \
	"$$uv" venv -q --allow-existing --python 3.11 $(VENV) && \
	"$$uv" pip install -q --python $(PY) --compile-bytecode -e '.[dev]'
	@touch $(PY)

setup: $(PY)

services-up: setup
	bash $(SERVICES) up

services-down:
	bash $(SERVICES) down

services-status:
	bash $(SERVICES) status

# Create/upgrade this checkout's metadata DB (its own database in the local PostgreSQL), load
# airflow_settings.yaml and serialize the DAGs (idempotent).
airflow-init: services-up
	bash $(SERVICES) airflow-db
	$(WITH_ENV) mkdir -p "$$AIRFLOW_HOME" && airflow db migrate >"$$AIRFLOW_HOME/db-migrate.log" 2>&1 \
		|| { tail -n 30 "$$AIRFLOW_HOME/db-migrate.log"; exit 1; }
	$(WITH_ENV) python -m datamover.settings_loader airflow_settings.yaml
	$(WITH_ENV) airflow dags reserialize >"$$AIRFLOW_HOME/reserialize.log" 2>&1 \
		|| { tail -n 30 "$$AIRFLOW_HOME/reserialize.log"; exit 1; }

settings: airflow-init

# The local sample data: egress demo tables, sample Ark Logs in the configured storage folder, the Ark bucket.
sample-data: services-up
	$(WITH_ENV) python -m tests.support.local_samples

demo: airflow-init sample-data
	$(WITH_ENV) bash scripts/demo

# Debian's chromium for the browser tests (tests/e2e/test_offload_page_browser.py), driven by Playwright.
browser:
	bash scripts/browser install

test: services-up airflow-init browser
	$(WITH_ENV) python -m pytest

test-unit: setup
	$(WITH_ENV) python -m pytest tests/unit tests/dags

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

standalone: airflow-init sample-data
	$(WITH_ENV) airflow standalone

# Every benchmark, one after the other (each prints its own figures and ratios).
bench: bench-dump bench-sync bench-offload

# moto keeps every object in RAM and slows as it grows: each S3 benchmark starts from a fresh one.
.PHONY: fresh-moto
fresh-moto: services-up
	bash $(SERVICES) down moto && bash $(SERVICES) up moto

clean: services-down
	@# the PostgreSQL cluster may live outside the checkout (see scripts/services.d/postgres.sh)
	home="$$(cat .state/services/postgres/home 2>/dev/null || true)"; \
	    case "$$home" in /tmp/datamover-pg-*) rm -rf "$$home" ;; esac
	rm -rf .state
-include bench/*.mk
