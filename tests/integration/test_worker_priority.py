"""`livemetrics worker` takes ``worker_nice`` at its start (streams/priority.py), before Faust's threads: its
autogroup (it leads its session, as `up` starts it) and every thread it has while it waits for Kafka. The
lowest priority, which any process may set for itself: the test runs unprivileged (and under `nice`) too."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from operations.command import livemetrics_argv
from operations.ports import free_port
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def test_the_worker_process_runs_at_worker_nice(make_settings, tmp_path):
    s = make_settings(worker_metrics_port=0, worker_nice=19).model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}  # nothing answers: it waits, threads started
    )
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            livemetrics_argv("worker"),
            env=s.child_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # as `up` starts it (operations/children.py)
        )
    try:
        wait_until(
            lambda: "worker: waiting for Kafka at" in log.read_text(),
            60,
            interval=0.2,
            what="the worker waiting for Kafka",
            alive=lambda: proc.poll() is None,
        )
        tasks = os.listdir(f"/proc/{proc.pid}/task")
        assert {os.getpriority(os.PRIO_PROCESS, int(t)) for t in tasks} == {19}, log.read_text()[-2000:]
        with open(f"/proc/{proc.pid}/autogroup") as f:
            assert f.read().strip().endswith("nice 19")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
