"""A broker outage in the log of the API process (embedded sink, live feed, notifier): each says once that
it lost Kafka and once that it has it back, however long the outage (livemetrics/outage_log.py). Before,
the sink logged nothing at all (idle) or a traceback per retry, the live feed a line each way without
when or how long, the notifier nothing. A broker of its own, SIGKILLed and started again: ``long`` (the
broker's start is most of it); the short version is tests/unit/test_outage_log.py (a real client against a
port where nothing listens)."""

from __future__ import annotations

import logging
import os
import signal

import httpx
import pytest

from api.main import create_api
from clickhouse.migrate import migrate
from tests.support.servers import ThreadServer, wait_until
from tests.support.services import local_kafka
from tests.support.stack import module_settings

pytestmark = [pytest.mark.integration, pytest.mark.long]

SERVICES = {"sink": "livemetrics.sink", "live feed": "livemetrics.api.feed", "notifier": "livemetrics.api.notify"}


@pytest.mark.timeout(300)
def test_a_broker_outage_is_logged_once_lost_and_once_back_by_the_sink_the_feed_and_the_notifier(
    tmp_path, clickhouse_dsn, caplog
):
    with local_kafka(tmp_path / "kafka") as (bootstrap, broker):
        s = module_settings(bootstrap, clickhouse_dsn, tmp_path)
        migrate(s)
        api = ThreadServer(create_api(s, run_sink=True)).start()
        for logger in SERVICES.values():
            caplog.set_level(logging.INFO, logger=logger)

        def lines(service: str, start: str) -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.name == SERVICES[service] and r.getMessage().startswith(f"{service}: {start}")
            ]

        try:
            wait_until(lambda: httpx.get(f"{api.url}/readyz", timeout=5).status_code == 200, 60, what="ready")
            notifier = api.server.config.app.state.notifier
            wait_until(lambda: notifier.intake and notifier.intake.assigned.is_set(), 60, what="notifier assigned")
            sink = api.server.config.app.state.sink
            wait_until(lambda: sink.lag._starts, 60, what="sink assigned")
            assert all(not lines(x, "lost Kafka") for x in SERVICES)
            os.killpg(broker.pid(), signal.SIGKILL)
            wait_until(lambda: all(lines(x, "lost Kafka since ") for x in SERVICES), 30, what="every 'lost'")
            broker.start(wait_s=90, quiet=True)
            wait_until(lambda: all(lines(x, "Kafka back after ") for x in SERVICES), 60, what="every 'back'")
            for service in SERVICES:
                lost, back = lines(service, "lost Kafka since "), lines(service, "Kafka back after ")
                assert len(lost) == 1 and len(back) == 1, (service, lost, back)
                assert "failed tries)" in back[0], back
        finally:
            api.stop()
