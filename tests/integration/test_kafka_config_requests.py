"""How many produce requests the stream worker's changelog producer and the gateway's producer send for a steady
stream of records over three partitions, counted by librdkafka itself (its statistics: requests sent per broker
and type) against the real broker. Requests, not records, are what the broker's CPU goes to (docs/architecture.md,
Broker CPU), and librdkafka sends one produce request per partition (confluentinc/librdkafka#1700), so a
producer's linger bounds its requests per partition."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from livemetrics.kafka_config import admin_config, changelog_producer_config

pytestmark = pytest.mark.integration

PARTITIONS = 3


def _topic(settings) -> str:
    name = f"kcfg-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(admin_config(settings))
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(timeout=30)
    return name


def _produce_requests(conf: dict, topic: str, seconds: float, per_s: int) -> tuple[int, int]:
    """(produce requests, records) for ``per_s`` records a second spread over the partitions for ``seconds``."""
    stats: list[dict] = []
    p = Producer({**conf, "statistics.interval.ms": 100, "stats_cb": lambda s: stats.append(json.loads(s))})
    sent = 0
    start = time.monotonic()
    while (now := time.monotonic() - start) < seconds:
        while sent < now * per_s:
            p.produce(topic, value=b"x" * 120, partition=sent % PARTITIONS)
            sent += 1
        p.poll(0.002)  # steady: a few records every couple of milliseconds, as a stream's batches
    assert p.flush(30) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # a statistics report after the flush counts every request
        stats.clear()
        p.poll(0.3)
        if stats:
            break
    produce = sum(b.get("req", {}).get("Produce", 0) for b in stats[-1]["brokers"].values())
    return produce, sent


def test_the_changelog_producer_sends_at_most_a_request_per_partition_every_200_ms(settings):
    """The sessions changelog gets a row per event (~5,000/s at 5,000 events/s) from the worker's
    ``DirectChangelog``; nothing waits for a row but the next offset commit. At 50 ms of linger it sent
    ~40 produce requests/s at 5,000 events/s, an eighth of all the broker's requests."""
    topic = _topic(settings)
    seconds = 3.0
    produce, sent = _produce_requests(changelog_producer_config(settings), topic, seconds, per_s=2000)
    assert sent >= 5000
    # 200 ms of linger: 5 batches a second per partition, and the last one flushed
    assert produce <= PARTITIONS * (seconds / 0.2 + 2), produce
