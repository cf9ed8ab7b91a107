"""A gateway worker process (``gateway_workers`` 2) whose event loop is stuck ends itself (the loop
watchdog, livemetrics/loop_watch.py) and the gateway's supervisor replaces it: before, its sibling
answered every probe on the shared port while the connections the kernel hashed to the stuck process
hung, and nothing restarted it."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from livemetrics.loop_watch import EXIT_LOOP_STUCK
from livemetrics.topics import create_topics
from operations.command import livemetrics_argv
from tests.integration.test_gateway_workers import ready, workers_of
from tests.support.loop_blocker import BLOCKED_IN, block_loop, with_loop_blocker
from tests.support.servers import wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.integration


def _every_connection_answers(url: str, n: int = 24) -> bool:
    """``n`` new connections (the kernel spreads them over the processes) all get /healthz 200."""
    for _ in range(n):
        try:
            with httpx.Client(timeout=2) as fresh:  # a new connection each time
                if fresh.get(url + "/healthz").status_code != 200:
                    return False
        except httpx.HTTPError:
            return False
    return True


@pytest.mark.timeout(180)
def test_a_stuck_gateway_worker_ends_itself_and_is_replaced(make_settings, tmp_path):
    s = make_settings(
        host="127.0.0.1", gateway_port=free_port(), gateway_workers=2, loop_stale_s=1, loop_stuck_exit_s=4
    )
    create_topics(s)
    log_path = tmp_path / "gateway.log"
    proc = subprocess.Popen(
        livemetrics_argv("gateway"),
        env=with_loop_blocker(s.child_env()),  # the workers can be blocked by block_loop (tests only)
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{s.gateway_port}"
    try:
        wait_until(lambda: ready(url), 60, interval=0.2, what="the gateway ready", alive=lambda: proc.poll() is None)
        wait_until(lambda: len(workers_of(proc)) == 2, 30, what="two worker processes")
        assert _every_connection_answers(url)
        stuck, other = workers_of(proc)
        block_loop(stuck.pid)
        stuck.wait(30)  # not our child: psutil gives no exit code, the supervisor's log does
        replaced = f"gateway worker pid {stuck.pid} exited (code {EXIT_LOOP_STUCK}); starting another"
        wait_until(lambda: replaced in log_path.read_text(errors="replace"), 10, what="the supervisor's line")
        log = log_path.read_text(errors="replace")
        assert "exiting with code 70 to be restarted" in log and BLOCKED_IN in log, log[-3000:]
        wait_until(
            lambda: len(workers_of(proc)) == 2 and stuck.pid not in {w.pid for w in workers_of(proc)},
            30,
            what="the stuck worker replaced",
            alive=lambda: proc.poll() is None,
        )
        assert other.is_running()
        wait_until(lambda: _every_connection_answers(url), 30, interval=0.5, what="every connection answered")
    finally:
        proc.terminate()
        proc.wait(40)
