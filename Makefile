# Canvass: `make run` (demo server) and `make test` (every test). Nothing else by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
CONSOLE_STAMP := server/console/static/vendor/.built
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev console lint bench clean

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

run: install
	$(BIN)/canvass db upgrade
	$(BIN)/canvass demo
	$(BIN)/canvass serve --host $(HOST) --port $(PORT)

test: install-dev
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check server sync geo fixtures bench tests

bench: install-dev
	for b in bench/*.py; do n=$$(basename $$b .py); [ "$$n" = "__init__" ] || $(BIN)/python -m bench.$$n; done

clean:
	rm -rf $(VENV) var .pytest_cache
