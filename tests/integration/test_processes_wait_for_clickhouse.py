"""`livemetrics sink` and `livemetrics notifier` started while ClickHouse cannot answer (an http:// DSN with
nothing behind it) wait for it, saying so in their log, instead of exiting 1: under `up`, five such exits
within seconds made it stop every process, the gateway and the worker too (operations/processes.py,
``migrated``). SIGTERM still stops them at once. The wait ends with the migrations once ClickHouse
answers, and the process goes on as before (not shown here: there is no ClickHouse server in the tests,
only chdb, which a DSN cannot point at)."""

from __future__ import annotations

import signal
import subprocess

import pytest

from operations.command import livemetrics_argv
from operations.ports import free_port
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("command", ["sink", "notifier"])
def test_started_while_clickhouse_is_down_it_waits_and_stops_on_sigterm(make_settings, tmp_path, command):
    s = make_settings(sink_ops_port=0, notifier_ops_port=0).model_copy(
        update={"clickhouse_dsn": f"http://127.0.0.1:{free_port()}"}
    )
    log = tmp_path / f"{command}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(livemetrics_argv(command), env=s.child_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: log.read_text().count(f"{command}: waiting for ClickHouse (retrying in") >= 2,
            60,
            interval=0.2,
            what="two tries, still waiting",
            alive=lambda: proc.poll() is None,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()[-3000:]
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
