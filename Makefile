# The two set-up commands: `make run` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-10)
RUN_STAMP := $(VENV)/.run-$(HASH)
TEST_STAMP := $(VENV)/.test-$(HASH)
DEMO_PORT ?= 8091
# pytest-xdist workers for the tests that allow it; tests marked `serial` (real processes racing timers:
# several nodes, agents, Alertmanager at size) run afterwards, alone. TEST_JOBS=0 runs everything serially.
TEST_JOBS ?= 2
# Extra pytest arguments for both phases, e.g. PYTEST_ARGS="-k portal".
PYTEST_ARGS ?=
# In a variable: a comma written inside $(call ...) would split its arguments.
TEST_EXTRAS := .[test,bench]

.PHONY: run test lint system-deps bench clean

# uv installs in parallel (about 4x faster than pip here); pip is the fallback.
INSTALL = if [ -x $(VENV)/bin/uv ]; then $(VENV)/bin/uv pip install -q --python $(PY) $(1); \
	else $(PY) -m pip install -q $(1); fi

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q uv || echo "uv unavailable; installing with pip"

$(RUN_STAMP): pyproject.toml | $(PY)
	$(call INSTALL,-e .)
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(call INSTALL,-e '$(TEST_EXTRAS)')
	touch $@ $(RUN_STAMP)

## make run: install, migrate, start demo targets on loopback and the service on SQLite with the example inventory.
run: $(RUN_STAMP)
	@$(PY) examples/demo_targets.py $(DEMO_PORT) & demo=$$!; \
	trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	$(PY) examples/demo_users.py; \
	NEGAHBAN_COOKIE_SECURE=false $(VENV)/bin/negahban serve --inventory examples/inventory.yaml

system-deps:
	@bash tools/system-deps.sh

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

## make test: install (pip into .venv, Debian packages when missing), lint, import layers, pytest on SQLite and PostgreSQL.
test: $(TEST_STAMP) system-deps lint
	@if [ "$(TEST_JOBS)" = "0" ]; then $(PY) -m pytest $(PYTEST_ARGS); else \
	  rc=0; \
	  $(PY) -m pytest -n $(TEST_JOBS) --dist loadgroup -m "not serial" $(PYTEST_ARGS) || rc=$$?; \
	  $(PY) -m pytest -m serial $(PYTEST_ARGS) || rc=$$?; \
	  exit $$rc; fi

bench: $(TEST_STAMP) system-deps
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache negahban.db*
