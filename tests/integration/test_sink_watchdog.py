"""The ClickHouse sink's thread is watched like an event loop (clickhouse/sink.py, livemetrics/loop_watch.py):
a sink waiting out a ClickHouse outage stays alive (/healthz 200 saying it waits on ClickHouse; /readyz
shows the stall), while a sink thread blocked anywhere else makes /healthz 503 naming the sink and, after
``loop_stuck_exit_s``, ends the process with code 70 and the thread's stack in the log: standalone
(``livemetrics sink``, a real process whose sink thread a test-only signal blocks) and embedded in the API
(its /healthz and /readyz name the sink; the exit is recorded). Before, a hung sink thread showed only as
``stalled`` in /readyz, exactly like an outage, and nothing restarted it."""

from __future__ import annotations

import ctypes
import logging
import threading

import httpx
import pytest

from api.main import create_api
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from clickhouse.sink_batch import Batch
from livemetrics.loop_watch import EXIT_LOOP_STUCK
from operations.children import Child
from operations.ports import free_port
from tests.integration.test_clickhouse_sink import produce, scalar, some_events
from tests.support.loop_blocker import BLOCKED_IN, block_thread, block_thread_here, with_loop_blocker
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


@pytest.mark.timeout(120)
def test_a_standalone_sink_whose_thread_hangs_says_so_and_exits_70_with_its_stack(make_settings, tmp_path):
    # its own chdb directory: a chdb engine belongs to one process, and this one never opens it
    s = make_settings(sink_ops_port=free_port(), loop_stale_s=1, loop_stuck_exit_s=4).model_copy(
        update={"clickhouse_dsn": f"chdb://{tmp_path / 'ch'}", "data_dir": tmp_path / "sink-data"}
    )
    ops = f"http://127.0.0.1:{s.sink_ops_port}"
    sink = Child("sink", ["sink"], tmp_path).start(with_loop_blocker(s.child_env()))
    try:
        r = wait_until(
            lambda: (r := _get(f"{ops}/readyz")) is not None and r.status_code == 200 and r,
            90,
            interval=0.2,
            what="the sink ready",
            alive=sink.alive,
        )
        assert r.json()["clickhouse"] is True
        assert (r := _get(f"{ops}/healthz")) is not None and r.status_code == 200, r
        assert sink.proc is not None
        block_thread(sink.proc.pid)
        r = wait_until(
            lambda: (r := _get(f"{ops}/healthz")) is not None and r.status_code == 503 and r,
            10,
            interval=0.1,
            what="/healthz 503",
            alive=sink.alive,
        )
        body = r.json()
        assert body["status"] == "stuck" and body["service"] == "sink" and body["loop_silent_s"] >= 1, body
        assert body["detail"].startswith("the ClickHouse sink's thread has not run for"), body
        assert sink.proc.wait(30) == EXIT_LOOP_STUCK, sink.tail(80)
        log = sink.tail(200)
        assert "sink: the ClickHouse sink's thread has not run for" in log, log
        assert "exiting with code 70 to be restarted" in log and BLOCKED_IN in log, log
    finally:
        sink.stop()


@pytest.mark.timeout(120)
def test_an_embedded_sink_waiting_on_clickhouse_is_alive_and_a_stuck_one_is_named_and_ends_the_process(make_settings):
    s = make_settings(sink_batch_rows=25, sink_batch_seconds=0.2, loop_stale_s=2, loop_stuck_exit_s=3)
    migrate(s)
    db = s.clickhouse_database
    api = ThreadServer(create_api(s, run_sink=True)).start()
    sink = api.server.config.app.state.sink
    exits: list[int] = []
    sink.watch._exit = exits.append  # inside pytest: recorded instead of ending the test run
    release = threading.Event()
    try:
        first, later = some_events(n_sessions=5, seed=31), some_events(n_sessions=5, seed=32)
        produce(s, first)
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") == len(first), 60, what="first rows")
        r = httpx.get(f"{api.url}/healthz", timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "ok", r.json()

        # ClickHouse refuses every insert: the sink waits and retries, 0.5 s then 1, 2, 4 s apart (before, a pass
        # without a failure between two retries, as with a small backlog, reset it to 0.5 s). The 4-s
        # wait is longer than loop_stale_s and loop_stuck_exit_s: it does not count as a hang.
        get_client(s).command(f"RENAME TABLE {db}.events TO {db}.events_away")
        produce(s, later)
        waits: list[dict] = []

        def waited_past_the_exit_limit_alive() -> bool:  # every answer meanwhile is 200
            r = httpx.get(f"{api.url}/healthz", timeout=5)
            assert r.status_code == 200, r.json()
            if "sink" in r.json():
                waits.append(r.json()["sink"])
            return any(w["waiting_s"] > 3 for w in waits)  # longer than loop_stuck_exit_s, still alive

        wait_until(waited_past_the_exit_limit_alive, 20, interval=0.1, what="a wait on ClickHouse past 3 s")
        assert all(w["waiting_on"] == "ClickHouse" for w in waits if w["waiting_s"] > 3), waits  # Kafka's: probes
        assert exits == []
        get_client(s).command(f"RENAME TABLE {db}.events_away TO {db}.events")
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") == len(first) + len(later), 60, what="all rows")
        assert scalar(s, "SELECT uniqExact(event_id) FROM {db}.events") == len(first) + len(later)

        block_thread_here("clickhouse-sink", release)
        r = wait_until(
            lambda: (r := httpx.get(f"{api.url}/healthz", timeout=5)).status_code == 503 and r, 10, what="503"
        )
        assert r.json()["status"] == "stuck" and r.json()["stuck"] == ["sink"], r.json()
        assert r.json()["sink"]["detail"].startswith("the ClickHouse sink's thread has not run for"), r.json()
        ready = httpx.get(f"{api.url}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["degraded"] == ["sink"], ready.json()
        assert ready.json()["sink"]["stuck"]["status"] == "stuck", ready.json()
        wait_until(lambda: exits, 10, what="the watchdog's exit")
        assert exits == [EXIT_LOOP_STUCK]
    finally:
        release.set()
        api.stop()


class _Dies(BaseException):
    """Not an ``Exception``: the sink's loop does not catch it, its thread ends."""


@pytest.mark.timeout(60)
def test_a_sink_thread_that_died_ends_the_process_like_a_stuck_one(make_settings):
    s = make_settings(loop_stale_s=0.5, loop_stuck_exit_s=1.5)
    migrate(s)
    sink = EventSink(s)
    exits: list[int] = []
    sink.watch._exit = exits.append  # inside pytest: recorded instead of ending the test run
    sink.start()
    try:
        wait_until(lambda: sink.watch.silent_s() is not None, 30, what="the first beat")
        assert sink._thread is not None and sink._thread.ident is not None
        for _ in range(10):  # raised inside a callback that librdkafka calls (its logger), it is swallowed: again
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(sink._thread.ident), ctypes.py_object(_Dies))
            sink._thread.join(1)
            if not sink._thread.is_alive():
                break
        assert not sink._thread.is_alive()
        wait_until(lambda: exits, 10, what="the watchdog's exit")
        assert exits == [EXIT_LOOP_STUCK]
        ok, details = sink.watch.health()
        assert not ok and details["status"] == "stuck", details
    finally:
        sink.stop()


@pytest.mark.timeout(60)
def test_an_insert_thread_stuck_in_its_own_code_is_stuck_not_waiting_on_clickhouse(make_settings, monkeypatch, caplog):
    """The sink's thread waits for its insert thread (``watch.waiting_for``): alive while that thread waits on
    ClickHouse, stuck once it is stuck in its own code, naming it, and the exit logs the insert thread's
    stack. Before, the sink's wait for the insert thread was declared a wait on ClickHouse, so an insert
    thread stuck in Python kept /healthz 200 "waiting_on ClickHouse" for wait_limit_s (600 s)."""
    s = make_settings(sink_batch_rows=25, sink_batch_seconds=0.2, loop_stale_s=1, loop_stuck_exit_s=2)
    migrate(s)
    sink = EventSink(s)
    exits: list[int] = []
    sink.watch._exit = exits.append  # inside pytest: recorded instead of ending the test run
    release = threading.Event()
    token = Batch.token

    def stuck_in_the_insert_threads_own_code() -> None:
        release.wait()

    def token_or_block(batch: Batch) -> str:  # the insert step's first call, outside any declared wait
        if threading.current_thread().name.startswith("clickhouse-sink-insert"):
            stuck_in_the_insert_threads_own_code()
        return token(batch)

    sink.start()
    try:
        first = some_events(n_sessions=3, seed=41)
        produce(s, first)
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") == len(first), 60, what="first rows")
        assert sink.watch.health()[0]
        monkeypatch.setattr(Batch, "token", token_or_block)
        produce(s, some_events(n_sessions=3, seed=42))
        with caplog.at_level(logging.CRITICAL, logger="livemetrics.loop_watch"):
            wait_until(lambda: not sink.watch.health()[0], 20, what="the sink stuck")
            ok, details = sink.watch.health()
            assert details["detail"].startswith("the ClickHouse sink's insert thread has not run for"), details
            wait_until(lambda: exits, 10, what="the watchdog's exit")
        assert exits == [EXIT_LOOP_STUCK]
        text = next(r for r in caplog.records if r.name == "livemetrics.loop_watch").getMessage()
        assert "the ClickHouse sink's insert thread has not run for" in text, text
        assert "in stuck_in_the_insert_threads_own_code" in text, text  # the insert thread's stack
    finally:
        release.set()
        monkeypatch.undo()
        sink.stop()
