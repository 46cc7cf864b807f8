# The two set-up commands: `make run` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-10)
DEMO_PORT ?= 8091

.PHONY: run test lint system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

## make run: install, migrate, start demo targets on loopback and the service on SQLite with the example inventory.
run: $(STAMP)
	@$(PY) examples/demo_targets.py $(DEMO_PORT) & demo=$$!; \
	trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	$(PY) examples/demo_users.py; \
	NEGAHBAN_COOKIE_SECURE=false $(VENV)/bin/negahban serve --inventory examples/inventory.yaml

system-deps:
	@bash tools/system-deps.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

## make test: install (pip into .venv, Debian packages when missing), lint, import layers, pytest on SQLite and PostgreSQL.
test: $(STAMP) system-deps lint
	$(PY) -m pytest

bench: $(STAMP) system-deps
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache negahban.db*
