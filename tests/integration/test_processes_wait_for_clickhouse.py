"""`livemetrics sink` and `livemetrics notifier` started while ClickHouse cannot answer (an http:// DSN with
nothing behind it) wait for it, saying so in their log, instead of exiting 1: under `up`, five such exits
within seconds made it stop every process, the gateway and the worker too (operations/processes.py,
``migrated``). SIGTERM still stops them at once. The wait ends with the migrations once ClickHouse
answers, and the process goes on as before (not shown here: there is no ClickHouse server in the tests,
only chdb, which a DSN cannot point at)."""

from __future__ import annotations

import pytest

from operations.ports import free_port
from tests.support.waiting_process import waits_then_stops

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("command", ["sink", "notifier"])
def test_started_while_clickhouse_is_down_it_waits_and_stops_on_sigterm(make_settings, tmp_path, command):
    s = make_settings(sink_ops_port=0, notifier_ops_port=0).model_copy(
        update={"clickhouse_dsn": f"http://127.0.0.1:{free_port()}"}
    )
    waits_then_stops(
        command,
        s,
        tmp_path / f"{command}.log",
        lambda log: log.count(f"{command}: waiting for ClickHouse (retrying in") >= 2,
        60,
        "two tries, still waiting",
    )
