"""In secure mode the API may keep the sellers' notification channels and run the notifier's group; the
gateway and the worker may not touch the channels (a webhook URL and its sealed signing secret)."""

from __future__ import annotations

from tests.unit.operations.test_kafka_security import allowed, secure


def test_only_the_api_reads_and_writes_seller_channels():
    s = secure(topic_prefix="t1.", notify_group="notifier-x")
    assert allowed(s, "api", "topic", s.topic("seller-channels"), "write")
    assert allowed(s, "api", "topic", s.topic("seller-channels"), "read")
    assert allowed(s, "api", "group", "notifier-x", "read")
    for role in ("gateway", "worker"):
        assert not allowed(s, role, "topic", s.topic("seller-channels"), "describe"), role
        assert not allowed(s, role, "group", "notifier-x", "read"), role
