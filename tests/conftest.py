"""Shared fixtures. Real services only: a real Kafka broker and a real ClickHouse engine."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import hypothesis
import pytest

from livemetrics import topic_watch
from livemetrics.settings import Settings
from tests.support import services
from tests.support.stack import module_settings, new_seller

pytest_plugins = ["tests.support.file_order"]  # the slowest test files first (make test's xdist workers)

# The brokers of a test run live minutes or less, so they skip C2: C1-only costs half the CPU in a
# broker's first minute, C2 pays off only later (docs/architecture.md, Broker CPU). An explicit value wins.
os.environ.setdefault("LIVEMETRICS_KAFKA_JVM_OPTIONS", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
# The API, gateway and notifier served inside pytest (threads of its process) must not end the test run
# with their loop watchdog's os._exit (livemetrics/loop_watch.py): off unless a test sets it (the
# watchdog's own tests and the processes they start set it explicitly). /healthz still reports a stuck loop.
os.environ.setdefault("LIVEMETRICS_LOOP_STUCK_EXIT_S", "0")
# No per-example deadline for hypothesis: it is a timed assertion, and the suite runs 3 workers on 2 cores
# beside brokers (load 10-18 in CI: one example took 253 ms against the 200-ms default once). Speed is
# measured by `livemetrics bench`; an example that hangs still ends with the test's own timeouts.
hypothesis.settings.register_profile("livemetrics", deadline=None)
hypothesis.settings.load_profile("livemetrics")


def pytest_addoption(parser):
    parser.addoption(
        "--screenshots-dir",
        default=None,
        help="browser tests save dashboard screenshots here (make screenshots: docs/screenshots)",
    )


@pytest.fixture(scope="session")
def screenshots_dir(request) -> Path | None:
    """Where browser tests keep screenshots, or None (not asked for)."""
    d = request.config.getoption("--screenshots-dir")
    return Path(d) if d else None


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("livemetrics")


@pytest.fixture(scope="session")
def kafka(session_tmp) -> str:
    """Bootstrap address of a real broker for the whole test session."""
    with services.kafka_bootstrap(session_tmp) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def clickhouse_dsn(session_tmp) -> str:
    with services.clickhouse_dsn(session_tmp) as dsn:
        yield dsn


@pytest.fixture
def make_settings(kafka, clickhouse_dsn, tmp_path):
    """Settings for one test: its own topics, Faust app id, ClickHouse database and data dir."""

    def make(**overrides) -> Settings:
        return module_settings(kafka, clickhouse_dsn, tmp_path, **overrides)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def add_seller():
    """Create a seller's browser key and read token in Kafka; returns (browser_key, token)."""
    return new_seller


# How long a test's readers may take, after its teardown, to close the topic watches they opened (a reader's
# stop() joins its thread for 5-10 s and returns even if the thread is still on its way out).
WATCHES_CLOSE_S = 15.0


@pytest.fixture(autouse=True)
def _no_topic_watch_outlives_its_test(request):
    """Fails the test that leaves a topic watch open (livemetrics/topic_watch.py) after its teardown: a reader
    it started and did not stop. Its watches kept their shared admin client referenced, so a later test of the
    same process (an xdist worker) with the same admin config used that client (CI at 3b4a1fb). Readers
    started by module- or session-scoped fixtures are theirs (not counted: opened before this check's start; a
    test that restarts one marks itself ``watches_outlive_test``, and the fixture's teardown closes them).
    Costs a dict copy per test; waits only when a watch is still open."""
    if request.node.get_closest_marker("watches_outlive_test"):  # the module's stack owns what it opens
        yield
        return
    before = topic_watch.open_watches()
    yield
    deadline = time.monotonic() + WATCHES_CLOSE_S
    while (left := topic_watch.open_watches() - before) and time.monotonic() < deadline:
        time.sleep(0.05)  # the poll interval: nothing signals a watch's close to a waiter
    if left:
        threads = sorted(t.name for t in threading.enumerate() if t is not threading.current_thread())
        pytest.fail(
            f"{request.node.nodeid} left {len(left)} topic watches open after its teardown: "
            f"{sorted(left)}; threads still running: {threads}",
            pytrace=False,
        )
