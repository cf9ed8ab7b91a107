"""The API's live feed when its topics are deleted and created again (an operator's mistake, a restore) while it
runs, on the real broker: the snapshots and alerts written to the new topics reach the dashboards."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from confluent_kafka.admin import AdminClient

from api.live_feed import LiveFeed
from livemetrics.kafka_config import admin_config
from livemetrics.topics import create_topics
from tests.support.kafka_write import writer
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def produce(s, topic: str, values: list[dict]) -> None:
    p = writer(s)
    for v in values:
        p.produce(topic, key=v["seller_id"].encode(), value=json.dumps(v).encode(), partition=0)
    assert p.flush(30) == 0


def test_snapshots_and_alerts_of_recreated_topics_reach_the_feed(settings):
    snaps, alerts = settings.topic("live-metrics"), settings.topic("payment-alerts")
    admin = AdminClient(
        admin_config(settings)
    )  # kept alive to the end: librdkafka can abort when one closes mid-request
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    feed = LiveFeed(settings).start(loop)
    try:
        wait_until(feed.caught_up.is_set, 30, what="the feed at the end of its topics")
        produce(settings, snaps, [{"seller_id": "shop-a", "n": i} for i in range(50)])
        produce(
            settings,
            alerts,
            [{"kind": "payment_failed", "alert_id": f"old-{i}", "seller_id": "shop-a", "at": i} for i in range(50)],
        )
        wait_until(lambda: feed.latest.get("shop-a", {}).get("n") == 49, 30, what="the old snapshots read")
        wait_until(lambda: len(feed.recent_alerts.get("shop-a", ())) == 50, 30, what="the old alerts read")
        for fut in admin.delete_topics([snaps, alerts], operation_timeout=30).values():
            fut.result()
        wait_until(lambda: not {snaps, alerts} & set(admin.list_topics(timeout=10).topics), 60, what="deleted")
        create_topics(settings)
        produce(settings, snaps, [{"seller_id": "shop-b", "n": 1}])
        produce(settings, alerts, [{"kind": "payment_failed", "alert_id": "new-1", "seller_id": "shop-b", "at": 1}])
        wait_until(
            lambda: "shop-b" in feed.latest and feed.recent_alerts.get("shop-b"), 60, what="shop-b's snapshot and alert"
        )
    finally:
        feed.stop()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
