"""A seller's notification channel changes are bounded per seller (docs/notifications.md, Channels): each
add, removal or rules change is a record of the compacted `seller-channels` topic, which every API replica
and notifier reads whole when it starts, and whose active segment Kafka does not compact until it rolls
(7 days or 1 GiB by default). A running API (real Kafka, chdb)."""

from __future__ import annotations

import pytest

from tests.support.kafka_read import read_topic
from tests.support.notify_api import Api

pytestmark = pytest.mark.integration


def test_a_sellers_channel_changes_past_its_budget_get_429_and_write_nothing(make_settings, add_seller):
    """One token saving a channel's rules in a loop wrote a record each time, at its API rate (20/s per
    replica): 1.7 M records a day that every replica read at its start (200,000 took 3.2 s here) until
    compaction. Now a seller has a burst of 20 changes, then notify_channel_changes_per_hour (60); past it
    429 with Retry-After, nothing written, and another seller's changes go on."""
    s = make_settings(dev_mode=True, notify=False, notify_channel_changes_per_hour=60)
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1], "shop-b": add_seller(s, "shop-b")[1]})
    try:
        r = api.call("POST", "shop-a", "/webhooks", json={"url": "https://hooks.example.com/a"})
        assert r.status_code == 201, r.text
        rules = f"/channels/{r.json()['channel_id']}/rules"
        codes = [api.call("PUT", "shop-a", rules, json={"min_amount": f"{i}"}).status_code for i in range(25)]
        refused = api.call("PUT", "shop-a", rules, json={"min_amount": "99"})
        other = api.call("POST", "shop-b", "/webhooks", json={"url": "https://hooks.example.com/b"})
    finally:
        api.stop()
        api.registry.stop()
    assert codes == [200] * 19 + [429] * 6, codes  # old code: 200 every time
    assert refused.status_code == 429 and "LIVEMETRICS_NOTIFY_CHANNEL_CHANGES_PER_HOUR" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert other.status_code == 201
    written = read_topic(s, "seller-channels", 21, timeout=5)
    assert len(written) == 21  # 20 of shop-a's, 1 of shop-b's: nothing of the refused ones
