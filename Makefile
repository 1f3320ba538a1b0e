# Two commands do everything from a clean clone: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
CODE := airflow_provider_smpipe tests dags bench

.PHONY: setup system-deps test lint typecheck unit e2e demo up down render clean

setup: $(STAMP)

# Debian packages the local backend and the browser check need (unshare comes with util-linux).
system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(UV) pip install --python $(PY) -q -e ".[dev]"
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest -m "not e2e and not browser" -q

e2e: setup system-deps
	$(PY) -m pytest -m "e2e or browser" -q

test: setup system-deps lint typecheck
	$(PY) -m pytest -q -rs

# `make demo DAG=abalone_pipeline` runs another example DAG. The deployment docker-compose.yaml describes:
# `make up DB=postgres EXECUTOR=celery TRIGGERERS=2` (default: SQLite, LocalExecutor, one triggerer).
DAG ?=
DB ?=
EXECUTOR ?=
TRIGGERERS ?=
STACK_OPTIONS = $(if $(DAG),--dag-id $(DAG)) $(if $(DB),--db $(DB)) $(if $(EXECUTOR),--executor $(EXECUTOR)) \
	$(if $(TRIGGERERS),--triggerers $(TRIGGERERS))
demo: setup system-deps
	$(PY) -m airflow_provider_smpipe.demo run $(STACK_OPTIONS)

up: setup system-deps
	$(PY) -m airflow_provider_smpipe.demo up $(STACK_OPTIONS)

down:
	@test -x $(PY) && $(PY) -m airflow_provider_smpipe.demo down || true

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache test-artifacts
