"""The API's live feed on the real broker, fed messages it cannot use (what a buggy or hostile producer with
write access, or a tombstone on the compacted snapshot topic, leaves): each is skipped and counted, with a
warning naming where it is, and every seller's snapshots and alerts after it still arrive."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest
from prometheus_client import REGISTRY

from api.live_feed import LiveFeed
from tests.support.kafka_write import writer
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

UNUSABLE = [
    (b"shop-a", None),  # a tombstone
    (b"shop-a", b"[1, 2]"),  # JSON, not an object
    (b"shop-a", b'"text"'),
    (b"\xff\xfe", b'{"kind": "payment_failed", "alert_id": "x"}'),  # no seller in it, a key that is no UTF-8
    (b"shop-a", b"\x00\x01 not json"),
]


def skipped(topic: str) -> float:
    return REGISTRY.get_sample_value("livemetrics_live_feed_skipped_total", {"topic": topic}) or 0.0


def test_unusable_messages_are_skipped_and_the_feed_goes_on_for_every_seller(settings, caplog):
    snaps, alerts = settings.topic("live-metrics"), settings.topic("payment-alerts")
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    feed = LiveFeed(settings).start(loop)
    caplog.set_level(logging.WARNING, logger="livemetrics.api.feed")
    try:
        wait_until(feed.caught_up.is_set, 30, what="the feed at the end of its topics")
        before = {t: skipped(t) for t in (snaps, alerts)}
        p = writer(settings)
        for topic in (snaps, alerts):
            for key, value in UNUSABLE:
                p.produce(topic, key=key, value=value, partition=0)
        p.produce(snaps, key=b"shop-b", value=json.dumps({"seller_id": "shop-b", "n": 1}).encode(), partition=0)
        alert = {"kind": "payment_failed", "alert_id": "a-1", "seller_id": "shop-b", "at": 1}
        p.produce(alerts, key=b"shop-b", value=json.dumps(alert).encode(), partition=0)
        assert p.flush(30) == 0
        # Before, the first of them ended the feed's thread (TypeError, AttributeError, UnicodeDecodeError):
        # no snapshot or alert reached any dashboard of this API replica again, and nothing said so.
        wait_until(
            lambda: "shop-b" in feed.latest and feed.recent_alerts.get("shop-b"), 30, what="shop-b's snapshot and alert"
        )
        assert feed._thread is not None and feed._thread.is_alive()
        assert [a["alert_id"] for a in feed.recent_alerts["shop-b"]] == ["a-1"]
        assert {t: skipped(t) - before[t] for t in (snaps, alerts)} == {snaps: len(UNUSABLE), alerts: len(UNUSABLE)}
        said = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert any(f"{alerts}[0]@" in m for m in said) and any(f"{snaps}[0]@" in m for m in said)
    finally:
        feed.stop()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
