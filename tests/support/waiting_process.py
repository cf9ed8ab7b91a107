"""A `livemetrics` process started while what it needs does not answer: waited on until its log shows it
still waiting, then stopped with SIGTERM, which must end it at once, cleanly (test_worker_waits_for_kafka,
test_processes_wait_for_clickhouse)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from operations.command import livemetrics_argv
from tests.support.servers import wait_until


def waits_then_stops(
    command: str, settings, log: Path, waiting: Callable[[str], bool], within: float, what: str
) -> str:
    """Run ``command`` until ``waiting(log text)`` holds, SIGTERM it, check it exited 0 without a
    traceback; returns its log."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            livemetrics_argv(command), env=settings.child_env(), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: waiting(log.read_text()), within, interval=0.2, what=what, alive=lambda: proc.poll() is None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "Traceback" not in text
        return text
    finally:
        if proc.poll() is None:
            proc.kill()
