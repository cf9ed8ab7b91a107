"""A worker whose event loop is stuck (a thread in a blocking syscall, its other threads running) says so
on /healthz (503, how long), and its watchdog ends it with its own exit code, the loop's stack logged; a
new worker then counts exactly what was sent, also while the old one was stuck (at-least-once, idempotent
tables: nothing acknowledged is lost). ``up`` restarting such a worker: tests/integration/test_up_supervision.py."""

from __future__ import annotations

import random

import httpx
import pytest

from livemetrics.loop_watch import EXIT_LOOP_STUCK
from operations.ports import free_port
from tests.integration.test_streams_live import PAGES, Feed, Reader, event, matches, settled, wait_recount, wave
from tests.support.loop_blocker import BLOCKED_IN, block_loop, with_loop_blocker
from tests.support.servers import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def _health(port: int) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.HTTPError:
        return None


@pytest.mark.timeout(240)
def test_a_stuck_loop_makes_healthz_503_and_the_watchdog_exits_and_a_new_worker_counts_exactly(make_settings, tmp_path):
    s = make_settings(partitions=3, worker_metrics_port=free_port(), loop_stale_s=2, loop_stuck_exit_s=10)
    stuck = WorkerProcess(s, tmp_path, "stuck").start(with_loop_blocker(s.child_env()))
    snaps, feed, rng = Reader(s, "live-metrics"), Feed(s), random.Random(11)
    again = WorkerProcess(s, tmp_path, "again")
    try:
        feed.send(event("warmup", "warmup-session-1", "page_view", PAGES[0]))
        feed.flush()
        wait_until(lambda: snaps.poll().latest.get("warmup"), 90, what="worker up", alive=stuck.alive)
        wave(feed, rng, sessions=10, tag="before")
        wait_until(lambda: matches(snaps, feed) and settled(snaps), 30, interval=0.2, what="counts before the hang")
        assert (r := _health(s.worker_metrics_port)) is not None and r.status_code == 200, r
        assert stuck.proc is not None
        block_loop(stuck.proc.pid)
        wave(feed, rng, sessions=10, tag="during")  # read by nobody until the next worker
        r = wait_until(
            lambda: (r := _health(s.worker_metrics_port)) is not None and r.status_code == 503 and r,
            15,
            interval=0.2,
            what="/healthz 503",
            alive=stuck.alive,
        )
        assert r.json()["status"] == "stuck" and r.json()["loop_silent_s"] >= 2, r.json()  # > stale_s, rounded
        assert "the event loop has not run for" in r.json()["detail"]
        assert stuck.proc.wait(60) == EXIT_LOOP_STUCK, stuck.log_tail()
        log = stuck.log_tail(200)
        assert "exiting with code 70 to be restarted" in log and BLOCKED_IN in log, log
        again.start()
        wave(feed, rng, sessions=10, tag="after")
        wait_recount(snaps, feed, 90, "the new worker's recount", again)
    finally:
        snaps.close()
        stuck.stop()
        again.stop()
