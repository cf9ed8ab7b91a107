"""The notifier fed messages on payment-alerts it cannot use (a tombstone, JSON that is not an alert, a key
that is no UTF-8): each is skipped and counted with a warning naming where it is, and every seller's alerts
after them are delivered. Real Kafka, chdb, a real webhook server."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from clickhouse.migrate import migrate
from tests.support.kafka_write import writer
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import wait_until
from tests.support.webhook_server import hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

UNUSABLE = [
    None,  # a tombstone
    b"[1, 2]",  # JSON, not an object
    b"\x00\x01 not json",
]


def skipped(topic: str) -> float:
    return REGISTRY.get_sample_value("livemetrics_notify_skipped_total", {"topic": topic}) or 0.0


def test_unusable_alerts_are_skipped_and_every_sellers_alerts_after_them_delivered(
    make_settings, add_seller, hooks, caplog
):
    s = make_settings(dev_mode=True, **FAST_RETRIES)
    migrate(s)
    topic = s.topic("payment-alerts")
    api = Api(s, {seller: add_seller(s, seller)[1] for seller in ("shop-a", "shop-b")})
    caplog.set_level(logging.WARNING, logger="livemetrics.api.notify")
    try:
        for seller, path in (("shop-a", "/a"), ("shop-b", "/b")):
            assert api.call("POST", seller, "/webhooks", json={"url": hooks.url(path, "ok")}).status_code == 201
        send(s, alert("shop-a", "a-0"))
        wait_until(lambda: api.deliveries("shop-a", status="delivered"), 30, what="a-0 delivered")
        before = skipped(topic)
        p = writer(s)
        for partition in range(s.partitions):  # whichever notifier partition: every one gets them
            for value in UNUSABLE:
                p.produce(topic, key=b"\xff\xfe", value=value, partition=partition)
        assert p.flush(15) == 0
        send(s, alert("shop-a", "a-1"), alert("shop-b", "b-1"))
        # Before, the tombstone ended the intake's thread (TypeError): no alert was taken again, for any seller.
        wait_until(
            lambda: (
                [d["status"] for d in api.deliveries("shop-b")] == ["delivered"]
                and len(api.deliveries("shop-a", status="delivered")) == 2
            ),
            30,
            what="a-1 and b-1 delivered",
        )
        assert skipped(topic) - before == len(UNUSABLE) * s.partitions
        said = [r.getMessage() for r in caplog.records if "skipped the message at" in r.getMessage()]
        assert said and all(f"{topic}[" in m for m in said)
    finally:
        api.stop()
        api.registry.stop()
