"""The API's live feed and what its consumer cannot see (livemetrics/topic_watch.py), on the real broker:
partitions added to its topics, a topic created after the feed started, and a topic created again whose new log
grew past the feed's position before the feed fetched from it. All read within ``reader_topic_check_s``."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions

from api import live_feed
from api.live_feed import LiveFeed
from livemetrics.kafka_config import admin_config
from livemetrics.topics import create_topics
from tests.integration.test_compacted_topic_watch import _Captured
from tests.support.kafka_write import writer
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def produce(s, topic: str, values: list[dict], partition: int = 0) -> None:
    p = writer(s)
    for v in values:
        p.produce(topic, key=v["seller_id"].encode(), value=json.dumps(v).encode(), partition=partition)
    assert p.flush(30) == 0


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    runner.join(5)


def test_alerts_on_added_partitions_reach_the_feed(make_settings, loop):
    s = make_settings(reader_topic_check_s=1.0)
    alerts = s.topic("payment-alerts")
    admin = AdminClient(admin_config(s))  # kept alive to the end: librdkafka can abort when one closes mid-request
    feed = LiveFeed(s).start(loop)
    try:
        wait_until(feed.caught_up.is_set, 30, what="the feed at the end of its topics")
        for fut in admin.create_partitions([NewPartitions(alerts, s.partitions + 2)], operation_timeout=30).values():
            fut.result()
        alert = {"kind": "payment_failed", "alert_id": "on-new", "seller_id": "shop-a", "at": 1}
        produce(s, alerts, [alert], partition=s.partitions + 1)
        wait_until(lambda: feed.recent_alerts.get("shop-a"), 30, what="the alert on the added partition")
        assert feed._thread is not None and feed._thread.is_alive()
    finally:
        feed.stop()


def test_a_new_log_grown_past_the_feeds_position_is_read_from_its_start(make_settings, loop, monkeypatch):
    s = make_settings(reader_topic_check_s=1.0)
    snaps = s.topic("live-metrics")
    monkeypatch.setattr(live_feed, "Consumer", _Captured)
    _Captured.made.clear()
    admin = AdminClient(admin_config(s))  # kept alive to the end (#3663)
    feed = LiveFeed(s).start(loop)
    try:
        wait_until(feed.caught_up.is_set, 30, what="the feed at the end of its topics")
        produce(s, snaps, [{"seller_id": "shop-a", "n": i} for i in range(10)])
        wait_until(lambda: feed.latest.get("shop-a", {}).get("n") == 9, 30, what="the old snapshots read")
        (consumer,) = _Captured.made
        consumer.ask("pause")  # no fetch until the new log is longer than the old one
        for fut in admin.delete_topics([snaps], operation_timeout=30).values():
            fut.result()
        wait_until(lambda: snaps not in admin.list_topics(timeout=10).topics, 60, what="deleted")
        create_topics(s)
        produce(s, snaps, [{"seller_id": "shop-b", "n": 1}] + [{"seller_id": "shop-c", "n": i} for i in range(15)])
        consumer.ask("resume")
        wait_until(lambda: feed.latest.get("shop-c", {}).get("n") == 14, 60, what="the new log's end read")
        # shop-b's snapshot is the new log's first record, below the position the feed resumed at
        wait_until(lambda: "shop-b" in feed.latest, 30, what="the new log's records below the feed's position")
    finally:
        feed.stop()
