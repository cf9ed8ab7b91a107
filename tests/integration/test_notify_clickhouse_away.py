"""The notifier while ClickHouse cannot store its deliveries (the table detached, as by an operator or a
ClickHouse restart): webhooks still go out at once, each seller's, and once ClickHouse is back every
outcome is recorded, so the seller's list says `delivered`, not `pending` until the next restart (which
would also send the alert again). api/notify/outcomes.py; real Kafka, chdb, a real webhook server."""

from __future__ import annotations

import logging

import pytest

from clickhouse.client import get_client
from clickhouse.migrate import migrate
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import wait_until
from tests.support.webhook_server import hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def keys(hooks, path: str) -> list[str]:
    return [r.headers["idempotency-key"] for r in hooks.endpoints[path].received]


def test_outcomes_not_stored_while_clickhouse_is_away_are_recorded_once_it_is_back(
    make_settings, add_seller, hooks, caplog
):
    s = make_settings(dev_mode=True, **FAST_RETRIES)
    migrate(s)
    db = s.clickhouse_database
    api = Api(s, {seller: add_seller(s, seller)[1] for seller in ("shop-a", "shop-b")})
    caplog.set_level(logging.DEBUG, logger="livemetrics.api.notify")  # the retries' lines are debug
    try:
        for seller, path in (("shop-a", "/a"), ("shop-b", "/b")):
            assert api.call("POST", seller, "/webhooks", json={"url": hooks.url(path, "ok")}).status_code == 201
        send(s, alert("shop-a", "a-0"))
        wait_until(lambda: api.deliveries("shop-a", status="delivered"), 30, what="a-0 delivered")

        get_client(s).command(f"DETACH TABLE {db}.notification_deliveries")
        try:
            send(s, alert("shop-a", "a-1"), alert("shop-b", "b-1"))
            # sent without waiting for ClickHouse, every seller's
            wait_until(lambda: keys(hooks, "/a") == ["a-0", "a-1"] and keys(hooks, "/b") == ["b-1"], 30, what="sent")
            wait_until(
                lambda: "could not record" in caplog.text and "delivery outcomes" in caplog.text,
                30,
                what="an outcome not stored",
            )
        finally:
            get_client(s).command(f"ATTACH TABLE {db}.notification_deliveries")

        def settled() -> bool:
            a, b = api.deliveries("shop-a"), api.deliveries("shop-b")
            return [d["status"] for d in a] == ["delivered"] * 2 and [d["status"] for d in b] == ["delivered"]

        wait_until(settled, 60, interval=0.5, what="every delivery recorded as delivered")
        assert keys(hooks, "/a") == ["a-0", "a-1"] and keys(hooks, "/b") == ["b-1"]  # nothing sent twice
        # the outage in the log: once when it began, once when it ended (whichever use of ClickHouse failed
        # first, and however often each retried), at warning level; the retries only at debug level
        seen = [r for r in caplog.records if r.name == "livemetrics.api.notify" and r.levelno >= logging.WARNING]
        lost = [r.getMessage() for r in seen if r.getMessage().startswith("notifier: lost ClickHouse since ")]
        back = [r.getMessage() for r in seen if r.getMessage().startswith("notifier: ClickHouse back after ")]
        assert len(lost) == 1 and "notification_deliveries" in lost[0], [r.getMessage() for r in seen]
        assert len(back) == 1, [r.getMessage() for r in seen]
        assert not any("could not record" in r.getMessage() for r in seen if r.getMessage() not in lost)
    finally:
        api.stop()
        api.registry.stop()
