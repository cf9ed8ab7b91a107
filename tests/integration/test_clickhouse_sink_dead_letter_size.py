"""A refused message whose dead letter would be larger than Kafka takes (its value JSON-escaped grows up to
six times) on the real broker and engine: the dead letter carries the value's head, its size and hash instead
of the whole value, and the sink moves on; every other event is stored."""

from __future__ import annotations

import hashlib
import json

import pytest
from confluent_kafka import Producer

from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from livemetrics.kafka_config import producer_config
from tests.integration.test_clickhouse_sink import assert_stored_once, produce, some_events
from tests.integration.test_clickhouse_sink_resume import caught_up
from tests.support.kafka_read import read_topic
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

# Fits the raw topic (Kafka's default limit is 1 MB); JSON-escaped (\u0001) it is 2.4 MB.
HUGE = b"\x01" * 400_000


def test_a_refused_message_too_large_to_dead_letter_whole_does_not_stall_the_sink(make_settings):
    s = make_settings(sink_batch_seconds=0.5)
    migrate(s)
    p = Producer(producer_config(s))
    p.produce(s.topic("page-events"), key=b"whoever", value=HUGE, partition=0)
    assert p.flush(30) == 0
    events = some_events(n_sessions=20, seed=51)
    produce(s, events)
    sink = EventSink(s).start()
    try:
        # Before, Kafka refused the dead letter (MSG_SIZE_TOO_LARGE) and the sink took that for an outage:
        # it retried the batch for ever, storing nothing after it, for every seller.
        wait_until(lambda: caught_up(s), 60, what="everything stored and committed")
    finally:
        sink.stop()
    assert_stored_once(s, events)
    (dead,) = read_topic(s, "dead-letter", expect=1, timeout=20)
    body = json.loads(dead.value())
    assert body["source"] == {"topic": s.topic("page-events"), "partition": 0, "offset": 0}
    assert body["event_truncated"] == {"bytes": len(HUGE), "sha256": hashlib.sha256(HUGE).hexdigest()}
    assert body["event"] == HUGE[: len(body["event"])].decode() and 0 < len(body["event"]) < len(HUGE)
    assert len(dead.value()) < 1_000_000
