"""Read what really reached a topic (tests check Kafka itself, not the gateway's word for it)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from livemetrics.kafka_config import consumer_config
from livemetrics.settings import Settings


def read_topic(s: Settings, logical_topic: str, expect: int, timeout: float = 15.0, settle: float = 0.5) -> list:
    """Messages of a topic from the beginning: waits for ``expect`` messages, then ``settle`` seconds more
    so that an unexpected extra message is seen too."""
    c = Consumer(consumer_config(s, f"test-read-{uuid.uuid4().hex[:8]}"))
    # Every partition assigned, not subscribed: a group's join took 0.2-0.8 s of each read (load ~10).
    topic = s.topic(logical_topic)
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out: list = []
    deadline = time.monotonic() + timeout
    settle_until = None
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.1)
            if m is not None and not m.error():
                out.append(m)
            if len(out) >= expect and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
    finally:
        c.close()
    return out
