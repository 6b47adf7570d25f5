# Gatehouse — every entry point. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Byte-compile on install: a worker process that imports from source alone starts so
# slowly that uvicorn's health check can kill it.
export UV_COMPILE_BYTECODE := 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

$(BIN)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

install: $(BIN)/.installed ## Install Python dependencies (from uv.lock)

run: install migrate ## Migrate and serve on http://127.0.0.1:8000 (embedded default: SQLite)
	$(BIN)/gatehouse serve

worker: install ## Run background jobs from RabbitMQ (needs GATEHOUSE_BROKER_URL)
	$(BIN)/gatehouse worker

beat: install ## Send the periodic jobs, one per deployment (needs GATEHOUSE_BROKER_URL)
	$(BIN)/gatehouse beat

migrate: install ## Apply database migrations
	$(BIN)/gatehouse migrate

makemigration: install ## New migration from model changes: make makemigration m="add x"
	$(BIN)/alembic revision --autogenerate -m "$(m)" --rev-id "$$(date +%Y%m%d)_$$(date +%H%M%S)"

test: install ## Whole test suite (SQLite always; PostgreSQL when reachable)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff check, ruff format --check, mypy, event schemas current
	$(BIN)/ruff check src tests migrations scripts
	$(BIN)/ruff format --check src tests migrations scripts
	$(BIN)/mypy
	$(BIN)/python scripts/export_event_schemas.py --check

format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format src tests migrations scripts
	$(BIN)/ruff check --fix src tests migrations scripts

schemas: install ## Regenerate the events' JSON Schemas (docs/events/schemas)
	$(BIN)/python scripts/export_event_schemas.py

bench: install ## Benchmarks (requests/s of the hot paths)
	$(BIN)/python -m benchmarks.run

seed: install migrate ## Sample users of every role
	$(BIN)/python scripts/seed_database.py --env development

clean: ## Remove the virtualenvs and the embedded data dir
	rm -rf $(VENV) $(TOOLS) .gatehouse

.PHONY: help install run worker beat migrate makemigration test lint format schemas bench seed clean
