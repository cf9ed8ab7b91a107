"""The notifier when payment-alerts is deleted and created again while it runs (real Kafka, chdb, a real
webhook server): the alerts written to the new topic are delivered, every seller's."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from clickhouse.migrate import migrate
from livemetrics.kafka_config import admin_config
from livemetrics.topics import create_topics
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import wait_until
from tests.support.webhook_server import hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_alerts_of_a_recreated_topic_are_delivered(make_settings, add_seller, hooks):
    s = make_settings(dev_mode=True, **FAST_RETRIES)
    migrate(s)
    topic = s.topic("payment-alerts")
    admin = AdminClient(admin_config(s))  # kept alive to the end: librdkafka can abort when one closes mid-request
    api = Api(s, {seller: add_seller(s, seller)[1] for seller in ("shop-a", "shop-b")})
    try:
        for seller, path in (("shop-a", "/a"), ("shop-b", "/b")):
            assert api.call("POST", seller, "/webhooks", json={"url": hooks.url(path, "ok")}).status_code == 201
        send(s, *[alert("shop-a", f"a-{i}") for i in range(20)])
        wait_until(lambda: len(api.deliveries("shop-a", status="delivered")) == 20, 30, what="the old alerts")
        for fut in admin.delete_topics([topic], operation_timeout=30).values():
            fut.result()
        wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, 60, what="deleted")
        create_topics(s)
        send(s, alert("shop-a", "new-a"), alert("shop-b", "new-b"))
        wait_until(
            lambda: (
                api.deliveries("shop-b", status="delivered") and len(api.deliveries("shop-a", status="delivered")) == 21
            ),
            60,
            what="the new topic's alerts delivered",
        )
    finally:
        api.stop()
        api.registry.stop()
