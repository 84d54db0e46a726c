# Canvass: `make run` (demo server) and `make test` (every test). Nothing else by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
CONSOLE_STAMP := server/console/static/vendor/.built
PHONE_STAMP := server/phone/static/vendor/.built
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev console phone lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

run: install console phone
	$(BIN)/canvass db upgrade
	$(BIN)/canvass demo
	$(BIN)/canvass phone-link --port $(PORT)
	$(BIN)/canvass serve --host $(HOST) --port $(PORT)

test: install-dev console phone
	$(BIN)/pytest

# The console's front-end libraries: npm ci (pinned by package-lock.json), then copy their dist
# files into server/console/static/vendor/ (git-ignored). Re-runs only when the pins change.
CONSOLE_WEB := server/console/web
$(CONSOLE_STAMP): $(CONSOLE_WEB)/package.json $(CONSOLE_WEB)/package-lock.json $(CONSOLE_WEB)/copy-vendor.mjs
	@command -v npm >/dev/null || { echo "make console: node and npm are needed to build the console's libraries" >&2; exit 1; }
	cd $(CONSOLE_WEB) && npm ci --no-audit --no-fund --loglevel=error && node copy-vendor.mjs

console: $(CONSOLE_STAMP)

# The canvasser app's libraries (idb, Leaflet; fast-check for its Node tests): the same way,
# into server/phone/static/vendor/ (git-ignored), with its home-screen icons drawn at build time.
PHONE_WEB := server/phone/web
$(PHONE_STAMP): $(PHONE_WEB)/package.json $(PHONE_WEB)/package-lock.json $(PHONE_WEB)/copy-vendor.mjs
	@command -v npm >/dev/null || { echo "make phone: node and npm are needed to build the canvasser app" >&2; exit 1; }
	cd $(PHONE_WEB) && npm ci --no-audit --no-fund --loglevel=error && node copy-vendor.mjs

phone: $(PHONE_STAMP)

lint: install-dev
	$(BIN)/ruff check server sync geo fixtures bench tests

bench: install-dev
	for b in bench/*.py; do n=$$(basename $$b .py); [ "$$n" = "__init__" ] || $(BIN)/python -m bench.$$n; done

clean:
	rm -rf $(VENV) var .pytest_cache
