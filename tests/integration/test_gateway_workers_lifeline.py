"""A gateway with worker processes that is SIGKILLed (no handler runs) takes its workers with it: each
worker has the parent-death signal (livemetrics/lifeline.py), so none keeps the port or a producer."""

from __future__ import annotations

import signal

import pytest

from tests.integration.test_gateway_workers import ready, start_gateway, workers_of
from tests.support.servers import wait_until
from tests.support.services import free_port
from tests.support.up_process import gone

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_a_sigkilled_gateway_leaves_no_worker_behind(make_settings, tmp_path):
    s = make_settings(host="127.0.0.1", gateway_port=free_port(), gateway_workers=2)
    proc = start_gateway(s, tmp_path / "gateway.log")
    workers = []
    try:
        wait_until(
            lambda: ready(f"http://127.0.0.1:{s.gateway_port}") and len(workers_of(proc)) == 2,
            60,
            interval=0.2,
            what="gateway with 2 workers",
            alive=lambda: proc.poll() is None,
        )
        workers = workers_of(proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        assert not gone(workers, 30), (tmp_path / "gateway.log").read_text()[-2000:]
    finally:
        for w in workers:
            if w.is_running():
                w.kill()
