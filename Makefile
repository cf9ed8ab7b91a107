# livemetrics: `make run` starts everything on this machine, `make test` runs the whole suite.
# Both set themselves up on a fresh machine (virtualenv, Python packages, Java/Maven, Kafka jars,
# Chromium for the browser tests) and reuse what an earlier run downloaded.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
LOCK    = requirements/test.lock
SDK_PY  = producers/sdk-python
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) $(SDK_PY)/pyproject.toml | sha1sum | cut -c1-12)
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup lock system-deps kafka-jars chromium ops-tools tracker-js run test test-long test-fast chaos lint clean

setup: $(STAMP)

# Exactly the versions in the lock file (hash-checked), then the project itself without resolving anything,
# and the server SDK's own distribution (its only dependency, httpx, is in the lock; the tests import it).
$(STAMP): pyproject.toml $(LOCK) $(SDK_PY)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip install -q --no-deps -e $(SDK_PY)
	rm -f $(VENV)/.installed-*
	touch $@

# Refresh the lock files after changing dependencies in pyproject.toml (uv, in a virtualenv of its own;
# versions already locked are kept unless UPGRADE=--upgrade). The locks are for CPython 3.11 on x86_64 Linux.
UPGRADE ?=
lock:
	$(PYTHON) -m venv $(VENV)-lock && $(VENV)-lock/bin/python -m pip install -q uv
	$(VENV)-lock/bin/uv pip compile pyproject.toml --extra test $(UPGRADE) --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header -q -o requirements/test.lock
	$(VENV)-lock/bin/uv pip compile pyproject.toml $(UPGRADE) --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header -q -o requirements/runtime.lock

# Java 17+ and Maven run the local Kafka broker; installed from Debian when missing.
system-deps:
	@command -v java >/dev/null && command -v mvn >/dev/null || \
	  ( $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q openjdk-17-jre-headless maven )

kafka-jars: setup system-deps
	$(BIN)/livemetrics kafka provision

chromium:
	@command -v chromium >/dev/null || ( $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium )

# The operators' tools the suite checks deploy/ with: promtool (deploy/prometheus/, Debian's prometheus
# package) and docker-compose (`config -q` of deploy/compose.yaml; no Docker daemon needed).
ops-tools:
	@command -v promtool >/dev/null && command -v docker-compose >/dev/null || \
	  ( $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q prometheus docker-compose )

# The npm package producers/tracker-js (its tests run in make test): Debian's Node.js and npm when missing,
# then `npm ci` (exactly package-lock.json, from the npm registry) only when the lock file changed.
TRACKER_JS = producers/tracker-js
TRACKER_JS_STAMP = $(TRACKER_JS)/node_modules/.installed-$(shell sha1sum < $(TRACKER_JS)/package-lock.json | cut -c1-12)
tracker-js: $(TRACKER_JS_STAMP)
$(TRACKER_JS_STAMP): $(TRACKER_JS)/package-lock.json
	@command -v npm >/dev/null || ( $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm )
	cd $(TRACKER_JS) && npm ci --no-audit --no-fund
	touch $@

run: kafka-jars
	$(BIN)/livemetrics up

# Four pytest processes on the 2-core machine, a test file each at a time: most integration tests wait on
# brokers, rebalances and child processes rather than on the CPU (with three, the suite used ~1.2 of the 2
# cores: 24 CPU-minutes in 20.7 minutes; four took 18.5 minutes where three took 19.6), the slowest files first (tests/file_seconds.json, read by
# tests/support/file_order.py; xdist's own order put the few long files last); `long` cases run in make test-long.
# Refresh the record: add --file-seconds-out tests/file_seconds.json to the command below once.
test: kafka-jars chromium ops-tools tracker-js lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 4 --dist loadfile --no-loadscope-reorder -m "not long" --durations=30

test-long: kafka-jars chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider -m long

test-fast: setup ops-tools
	$(BIN)/python -m pytest -q -m "not integration and not browser"

# The broker SIGKILLed under load and restarted, CHAOS_CYCLES times (make test runs 2); then the chaos test:
# broker, worker, API and a gateway worker SIGKILLed in turn under `up`, CHAOS_ROUNDS times (make test
# runs 1), CHAOS_SESSIONS sessions per storefront thread; docs/operations.md.
CHAOS_CYCLES ?= 8
CHAOS_ROUNDS ?= 6
CHAOS_SESSIONS ?= 15000
chaos: kafka-jars
	LIVEMETRICS_TEST_CHAOS_CYCLES=$(CHAOS_CYCLES) $(BIN)/python -m pytest -q -s -p no:cacheprovider --timeout 1800 \
	  tests/integration/test_broker_outage.py
	LIVEMETRICS_TEST_CHAOS_ROUNDS=$(CHAOS_ROUNDS) LIVEMETRICS_TEST_CHAOS_SESSIONS=$(CHAOS_SESSIONS) \
	  $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/integration/test_chaos.py

# ruff (lint rules and the formatter's check, settings in pyproject.toml) over the whole tree, then mypy
# --strict on the modules where types pay most: the event contract, the session state machine, key and
# provider-key formats, settings, the Stripe mapping, the worker's door to Faust's internals and what
# bypasses Faust (app factory, fast path, direct changelog). (The rest is not type-checked yet: `mypy
# livemetrics streams ...` still reports ~200 errors there.) `make test` runs it before pytest.
MYPY_STRICT = livemetrics/contract.py streams/state.py livemetrics/keys.py livemetrics/key_format.py livemetrics/settings.py \
  livemetrics/provider_keys.py producers/gateway/providers/stripe.py \
  streams/faust_internals.py streams/app.py streams/fastpath.py streams/changelog.py \
  producers/gateway/overload.py producers/gateway/worker_lag.py
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict $(MYPY_STRICT)

clean:
	rm -rf .livemetrics .pytest_cache
