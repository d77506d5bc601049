# `make run` and `make test` start from a fresh clone: they create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run cluster test lint bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# make run and make cluster start the GitHub simulator: its few dependencies have a stamp of their
# own, so that they install it and not the whole test toolchain (requirements-dev.txt includes it).
$(VENV)/.simulator: $(VENV)/.runtime requirements-simulator.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-simulator.txt
	touch $@

$(VENV)/.dev: $(VENV)/.simulator requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# exec, so that the SIGTERM make forwards to its child reaches the supervisor itself.
run: $(VENV)/.simulator
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py collectstatic --noinput -v 0
	DEBUG=$${DEBUG:-1} exec $(PY) scripts/stack.py run

# The scaled-out topology (scripts/stack.py): PostgreSQL is required, as several processes write at once.
cluster: $(VENV)/.simulator
	@test -n "$$DATABASE_URL" || { echo "make cluster needs DATABASE_URL, a PostgreSQL database (postgres://USER@HOST:PORT/NAME)." >&2; exit 2; }
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py collectstatic --noinput -v 0
	DEBUG=$${DEBUG:-1} exec $(PY) scripts/stack.py cluster

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DEBUG=1 $(VENV)/bin/mypy

# Tests need some SECRET_KEY; a real deployment sets its own. Most of a test's time is spent waiting
# for the processes it starts, so TEST_PROCESSES pytest processes (pytest-xdist) share two cores
# well; each has its own database, Redis namespace and event prefix (tests/settings.py). The 15
# slowest tests are printed last, so that the suite's time stays in view. PYTEST_ARGS selects tests
# (.ci/run: -m postgres).
TEST_PROCESSES ?= 4
test: export SECRET_KEY ?= django-insecure-test-only-key
test: lint
	$(PY) scripts/stack.py redis
	$(VENV)/bin/pytest -n $(TEST_PROCESSES) --dist loadgroup --durations=15 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache .mypy_cache

bench: $(VENV)/.dev
	$(PY) -m bench
