# Gatehouse — every entry point. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
WEB := web
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

# The web apps: node packages from web/package-lock.json, built by Vite into web/dist.
$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/admin -type f 2>/dev/null) \
	$(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json

$(WEB)/dist/.built: $(WEB)/node_modules/.installed $(WEB_SOURCES)
	cd $(WEB) && npm run build --silent
	@touch $@

# The e2e suite drives Debian's Chromium (a test tool's own browser download is not used).
browser: ## Install Chromium from Debian's packages for the web e2e (as root)
	@command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null \
		|| (apt-get update -q && apt-get install -y -q chromium >/dev/null)

# tests/deploy checks the alert rules, their unit tests and the scrape config with
# promtool (Debian ships it in its prometheus package; its recommends, node-exporter and
# friends, are not needed), the logrotate file with logrotate and the systemd units with
# systemd-analyze.
promtool: ## Install promtool from Debian's prometheus package for tests/deploy (as root)
	@command -v promtool >/dev/null \
		|| apt-get install -y -q --no-install-recommends prometheus >/dev/null \
		|| (apt-get update -q && apt-get install -y -q --no-install-recommends prometheus >/dev/null)

# `make bench` drives the server with wrk (Debian's package: the HTTP load generator
# whose Lua scripts are in benchmarks/wrk).
wrk: ## Install wrk from Debian's packages for the benchmarks (as root)
	@command -v wrk >/dev/null \
		|| apt-get install -y -q wrk >/dev/null \
		|| (apt-get update -q && apt-get install -y -q wrk >/dev/null)

log-tools: ## Install logrotate and systemd-analyze for tests/deploy (as root)
	@(command -v logrotate && command -v systemd-analyze) >/dev/null \
		|| apt-get install -y -q --no-install-recommends logrotate systemd >/dev/null \
		|| (apt-get update -q && apt-get install -y -q --no-install-recommends logrotate systemd >/dev/null)

# tests/deploy/test_gateway.py runs deploy/nginx/gatehouse.conf in a real nginx of its
# own (its own prefix, ports and pid file). Debian's package starts the system nginx on
# port 80 when it is installed: stopped at once and kept from starting at boot, since
# only the binary is wanted.
nginx: ## Install nginx from Debian's nginx-light for tests/deploy (as root; the system service is not left running)
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
		{ apt-get install -y -q --no-install-recommends nginx-light >/dev/null \
		|| (apt-get update -q && apt-get install -y -q --no-install-recommends nginx-light >/dev/null); } \
		&& if [ -d /run/systemd/system ]; then systemctl disable --now nginx >/dev/null 2>&1 || true; \
		else /usr/sbin/invoke-rc.d nginx stop >/dev/null 2>&1 || /etc/init.d/nginx stop >/dev/null 2>&1 || true; fi; }

# tests/oidc/test_relying_parties.py runs real relying parties against the OpenID
# provider: Apache's mod_auth_openidc (Debian's packages; only the binary and the module
# are wanted, so the system apache2 the package starts on port 80 is stopped at once and
# kept from starting at boot) and the npm ones below.
oidc-rp-tools: ## Install Apache and mod_auth_openidc from Debian's packages for tests/oidc (as root; the system Apache is not left running)
	@test -x /usr/sbin/apache2 -a -f /usr/lib/apache2/modules/mod_auth_openidc.so || { \
		{ apt-get install -y -q --no-install-recommends apache2 libapache2-mod-auth-openidc >/dev/null \
		|| (apt-get update -q && apt-get install -y -q --no-install-recommends apache2 libapache2-mod-auth-openidc >/dev/null); } \
		&& if [ -d /run/systemd/system ]; then systemctl disable --now apache2 >/dev/null 2>&1 || true; \
		else /usr/sbin/invoke-rc.d apache2 stop >/dev/null 2>&1 || /etc/init.d/apache2 stop >/dev/null 2>&1 || true; fi; }

# The npm relying parties (openid-client, oidc-client-ts), from their own lock file.
OIDC_RP := tests/oidc/rp
$(OIDC_RP)/node_modules/.installed: $(OIDC_RP)/package.json $(OIDC_RP)/package-lock.json
	cd $(OIDC_RP) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

oidc-rp-install: $(OIDC_RP)/node_modules/.installed ## Install the npm relying parties of tests/oidc (from their package-lock.json)

web-install: $(WEB)/node_modules/.installed ## Install the web apps' node packages (from package-lock.json)

web: $(WEB)/dist/.built ## Build the client app and the admin portal into web/dist

api-client: install web-install ## Regenerate web/openapi.json and the web apps' typed API client
	$(BIN)/python scripts/export_openapi.py
	cd $(WEB) && npm run api --silent

run: install migrate web ## Build the apps, migrate and serve on http://127.0.0.1:8000 (embedded default: SQLite; PORT=, HOST= to move it)
	$(BIN)/gatehouse serve $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

worker: install ## Run background jobs from RabbitMQ (needs GATEHOUSE_BROKER_URL)
	$(BIN)/gatehouse worker

beat: install ## Send the periodic jobs, one per deployment (needs GATEHOUSE_BROKER_URL)
	$(BIN)/gatehouse beat

migrate: install ## Apply database migrations
	$(BIN)/gatehouse migrate

makemigration: install ## New migration from model changes: make makemigration m="add x"
	$(BIN)/alembic revision --autogenerate -m "$(m)" --rev-id "$$(date +%Y%m%d)_$$(date +%H%M%S)"

# pytest-xdist: one worker per core; every test makes its own databases, vhosts and keys.
# `loadgroup`: tests marked `xdist_group` run on one worker, so a module that starts
# servers once for all its tests (tests/deploy/test_gateway.py) starts them once; the
# rest is spread as before.
PYTEST_WORKERS ?= auto

test: install web oidc-rp-install ## Whole test suite: pytest (SQLite; PostgreSQL, Redis, RabbitMQ, Chromium, Apache when there), Vitest
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)
	cd $(WEB) && npm test --silent

screenshots: install web ## The README's screenshots of the apps, taken by the e2e suite
	E2E_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/web -q

lint: install web-install ## ruff, mypy, event schemas, the web apps' API client current, tsc, Biome
	$(BIN)/ruff check src tests migrations scripts
	$(BIN)/ruff format --check src tests migrations scripts
	$(BIN)/mypy
	$(BIN)/python scripts/export_event_schemas.py --check
	$(BIN)/python scripts/export_openapi.py --check
	cd $(WEB) && npm run api:check --silent && npm run typecheck --silent
	cd $(WEB) && npm run lint:openapi --silent
	cd $(WEB) && npm run lint --silent

format: install web-install ## Apply ruff's and Biome's formatting and safe fixes
	$(BIN)/ruff format src tests migrations scripts
	$(BIN)/ruff check --fix src tests migrations scripts
	cd $(WEB) && npm run format --silent

schemas: install ## Regenerate the events' JSON Schemas (docs/events/schemas)
	$(BIN)/python scripts/export_event_schemas.py

bench: install wrk ## Benchmarks against a bare hello, with wrk (BENCH_ARGS="--quick" to try it)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

seed: install migrate ## Sample users of every role
	$(BIN)/python scripts/seed_database.py --env development

clean: ## Remove the virtualenvs, node packages, the apps' build and the embedded data dir
	rm -rf $(VENV) $(TOOLS) .gatehouse $(WEB)/node_modules $(WEB)/dist

.PHONY: help install browser promtool wrk log-tools nginx oidc-rp-tools oidc-rp-install web-install web api-client screenshots run worker beat migrate makemigration test lint format schemas bench seed clean
