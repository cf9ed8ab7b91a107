"""A refused message whose dead letter would be larger than Kafka takes (its value JSON-escaped grows up to
six times) on the real broker and engine: the dead letter carries the value's head, its size and hash instead
of the whole value, and the sink moves on; every other event is stored."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from livemetrics.kafka_config import admin_config
from livemetrics.topics import create_topics
from tests.integration.test_clickhouse_sink import assert_stored_once, produce, some_events
from tests.integration.test_clickhouse_sink_resume import caught_up
from tests.support.kafka_read import read_topic
from tests.support.kafka_write import writer
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

# Fits the raw topic (Kafka's default limit is 1 MB); JSON-escaped (\u0001) it is 2.4 MB.
HUGE = b"\x01" * 400_000


def test_a_refused_message_too_large_to_dead_letter_whole_does_not_stall_the_sink(make_settings):
    s = make_settings(sink_batch_seconds=0.5)
    migrate(s)
    p = writer(s)
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


def test_dead_letters_fit_a_dead_letter_topic_whose_limit_is_below_the_cap(make_settings, caplog):
    """A dead-letter topic whose max.message.bytes (64 KiB here) is below the dead letters' cap (512 KiB): the
    dead letters Kafka refuses as too large are cut until they fit, and the sink moves on."""
    s = make_settings(sink_batch_seconds=0.5)
    migrate(s)
    create_topics(s)
    limit = 64 * 1024
    # Kept alive to the end: librdkafka can abort when an admin client is closed mid-request (#3663).
    admin = AdminClient(admin_config(s))
    entry = ConfigEntry("max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET)
    for fut in admin.incremental_alter_configs(
        [ConfigResource("topic", s.topic("dead-letter"), incremental_configs=[entry])]
    ).values():
        fut.result()
    # Two refused values, each fitting the raw topic and its dead letter the 512 KiB cap (~390 KB), not the limit;
    # random bytes, so that compression does not make them fit.
    rnd = random.Random(52)
    bad = [rnd.randbytes(150_000), rnd.randbytes(150_000)]
    p = writer(s)
    for value in bad:
        p.produce(s.topic("page-events"), key=b"whoever", value=value, partition=0)
    assert p.flush(30) == 0
    events = some_events(n_sessions=20, seed=52)
    produce(s, events)
    sink = EventSink(s).start()
    try:
        # Before, Kafka refused each dead letter (MSG_SIZE_TOO_LARGE) and the sink retried the batch for ever.
        wait_until(lambda: caught_up(s), 60, what="everything stored and committed")
    finally:
        sink.stop()
    assert_stored_once(s, events)
    dead = read_topic(s, "dead-letter", expect=2, timeout=20)
    assert len(dead) == 2
    for offset, (value, m) in enumerate(
        zip(bad, sorted(dead, key=lambda m: json.loads(m.value())["source"]["offset"]))
    ):
        body = json.loads(m.value())
        assert body["source"] == {"topic": s.topic("page-events"), "partition": 0, "offset": offset}
        assert body["event_truncated"] == {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
        # the value's head as text (a multi-byte character cut at its end decodes differently)
        assert len(body["event"]) > 1000 and value.decode("utf-8", "replace").startswith(body["event"][:-4])
        assert len(m.value()) <= limit
    assert any("dead-letter" in r.getMessage() and "too large" in r.getMessage() for r in caplog.records)
