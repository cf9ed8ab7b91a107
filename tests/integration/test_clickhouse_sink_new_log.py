"""A sink whose topics are a new log while ClickHouse keeps the offsets it stored from the old one (the topics
deleted and recreated, the sink pointed at another cluster with the same topic names), on the real broker and
engine: every event of the new log is stored, none twice, and the sink says what it found."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future

import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from clickhouse.sink_batch import Batch
from livemetrics.kafka_config import admin_config, consumer_config
from livemetrics.settings import RAW_TOPICS, Settings
from livemetrics.topics import create_topics
from tests.integration.test_clickhouse_dedup import read_all
from tests.integration.test_clickhouse_sink import assert_stored_once, produce, some_events
from tests.integration.test_clickhouse_sink_resume import caught_up
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def sink_topics(s) -> list[str]:
    return [s.topic(t) for t in RAW_TOPICS] + [s.topic("payment-alerts")]


def store_all(s) -> None:
    """Run a sink until the group has committed everything in its topics."""
    sink = EventSink(s).start()
    try:
        wait_until(lambda: caught_up(s), 60, what="everything stored and committed")
    finally:
        sink.stop()


def recreate(s, admin: AdminClient) -> None:
    """Delete the sink's topics and create them again, empty (the same names, a new log)."""
    topics = sink_topics(s)
    for fut in admin.delete_topics(topics, operation_timeout=30).values():
        fut.result()
    wait_until(lambda: not set(topics) & set(admin.list_topics(timeout=10).topics), 60, what="the topics deleted")
    create_topics(s)
    wait_until(lambda: set(topics) <= set(admin.list_topics(timeout=10).topics), 60, what="the topics created")


def resets_counted(s, reason: str) -> float:
    return sum(
        REGISTRY.get_sample_value("livemetrics_sink_log_resets_total", {"topic": t, "reason": reason}) or 0.0
        for t in sink_topics(s)
    )


def stored_partitions(s) -> set[tuple[str, int]]:
    rows = get_client(s).query(
        f"SELECT DISTINCT kafka_topic, kafka_partition FROM {s.clickhouse_database}.sink_offsets"
    )
    return {(t, int(p)) for t, p in rows.result_rows}


def stored_log(make_settings, n_sessions: int, seed: int) -> tuple[Settings, AdminClient, list]:
    """A sink's settings and migrated database, an admin client for the test to keep alive to its end
    (librdkafka can abort when one closes mid-request), and the events of ``n_sessions`` sessions produced and
    stored: the old log."""
    s = make_settings(sink_batch_seconds=0.2)
    migrate(s)
    admin = AdminClient(admin_config(s))
    old = some_events(n_sessions=n_sessions, seed=seed)
    produce(s, old)
    store_all(s)
    return s, admin, old


def test_a_recreated_topic_is_read_from_its_start_not_after_the_old_logs_stored_offsets(make_settings, caplog):
    s, admin, old = stored_log(make_settings, n_sessions=20, seed=21)
    had = stored_partitions(s)
    recreate(s, admin)
    # More events than before in the new log: its end passes the offsets stored from the old one.
    new = some_events(n_sessions=60, seed=22)
    produce(s, new)
    before = resets_counted(s, "new_log")
    caplog.set_level(logging.INFO, logger="livemetrics.sink")
    store_all(s)
    # Before, the sink resumed each partition after the old log's stored offset: the new log's first
    # messages (every offset up to it) were never read (443 of 614 events stored).
    assert_stored_once(s, old + new)
    assert resets_counted(s, "new_log") - before == len(had)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "is a new log" in r.getMessage()]
    assert sorted(said) == sorted(m for m in said if any(f"{t}[{p}] is a new log" in m for t, p in had))
    assert len(said) == len(had)
    # The old log's offsets are forgotten: a sink started again resumes after what it stored from the new one.
    caplog.clear()
    more = some_events(n_sessions=10, seed=23)
    produce(s, more)
    store_all(s)
    assert_stored_once(s, old + new + more)
    assert not [r for r in caplog.records if "is a new log" in r.getMessage()]


def test_a_log_shorter_than_the_stored_offsets_is_read_from_its_start_and_they_are_forgotten(make_settings, caplog):
    """The topic ids unknown (recorded by no earlier assignment: a sink upgraded after the topics were
    recreated), a new log shorter than the stored offsets: judged by its range alone."""
    s, admin, old = stored_log(make_settings, n_sessions=60, seed=31)
    had = stored_partitions(s)
    get_client(s).command(f"TRUNCATE TABLE IF EXISTS {s.clickhouse_database}.sink_logs")  # no id recorded
    recreate(s, admin)
    few = some_events(n_sessions=3, seed=32)
    produce(s, few)
    before = resets_counted(s, "beyond_end")
    caplog.set_level(logging.INFO, logger="livemetrics.sink")
    store_all(s)  # librdkafka alone reset the fetch to the log's start (out of range): the old code too
    assert_stored_once(s, old + few)
    # The new log grows past the old offsets while no sink runs. Before, ClickHouse kept the old log's offsets
    # (sink_offsets keeps the highest ever stored), so the next start resumed after them, past the group's
    # committed offset: every message of the new log in between was skipped.
    more = some_events(n_sessions=60, seed=33)
    produce(s, more)
    store_all(s)
    assert_stored_once(s, old + few + more)
    beyond = [r for r in caplog.records if "ends before the offset stored" in r.getMessage()]
    assert beyond and len(beyond) == resets_counted(s, "beyond_end") - before
    assert all(r.levelno == logging.WARNING for r in beyond)
    assert all(any(f"{t}[{p}] ends before" in r.getMessage() for t, p in had) for r in beyond)


def store_batch(s, sink: EventSink, msgs: list) -> int:
    """Store ``msgs`` as one batch of the sink, as its threads do; the rows written."""
    batch = Batch(sink.alerts_topic)
    batch.add(msgs)
    prepared: Future = Future()
    prepared.set_result(sink.store.prepare(batch))
    return sink.store.write(batch, prepared)


def test_a_batch_of_a_new_log_is_stored_when_an_old_logs_batch_had_the_same_offsets(make_settings):
    s = make_settings()
    migrate(s)
    admin = AdminClient(admin_config(s))  # kept alive to the end (see above)
    sink = EventSink(s)
    old = some_events(n_sessions=20, seed=41)
    produce(s, old)
    assert store_batch(s, sink, read_all(s, sink.topics, len(old))) == len(old)
    recreate(s, admin)
    # The same sessions (so the same partitions, as many messages in each), other events: the new log's batch
    # covers the offsets the old log's did.
    new = [msgspec.structs.replace(e, event_id=str(uuid.uuid4())) for e in old]
    produce(s, new)
    # Before, the token was the offset ranges alone: the same as the old batch's, so ClickHouse took the insert
    # for a retry of that one and dropped it (0 rows written).
    assert store_batch(s, sink, read_all(s, sink.topics, len(new))) == len(new)
    assert_stored_once(s, old + new)
    sink.consumer.close()


def test_the_same_log_ending_before_the_stored_offset_is_read_from_its_start(make_settings, caplog):
    """As after an unclean leader election (a single broker cannot make one): ClickHouse holds an offset past
    the end of the log whose topic id was recorded. New messages come at the log's end, below that offset."""
    s = make_settings(sink_batch_seconds=0.2)
    migrate(s)
    old = some_events(n_sessions=20, seed=61)
    produce(s, old)
    store_all(s)
    db, topic = s.clickhouse_database, s.topic("page-events")
    get_client(s).command(f"INSERT INTO {db}.sink_offsets VALUES ('{topic}', 0, 100000)")  # the lost tail's
    new = some_events(n_sessions=40, seed=62)
    produce(s, new)
    caplog.set_level(logging.INFO, logger="livemetrics.sink")
    store_all(s)
    # Before, the sink resumed page-events[0] after offset 100000: every new message of it was skipped.
    assert_stored_once(s, old + new)
    said = [r.getMessage() for r in caplog.records if "ends before the offset stored" in r.getMessage()]
    assert len(said) == 1 and f"{topic}[0] ends before" in said[0] and "Stored up to offset 100000" in said[0]
    assert "truncated (an unclean leader election)" in said[0] and "reading it from 0" in said[0]


def test_a_log_recreated_before_topic_ids_were_recorded_and_grown_past_the_stored_offsets_is_read_whole(
    make_settings, caplog
):
    """A sink upgraded to the topic id check after its topics were recreated: no id recorded for the stored
    offsets, and Kafka dropped the group's offsets with the old topics."""
    s, admin, old = stored_log(make_settings, n_sessions=20, seed=71)
    had = stored_partitions(s)
    get_client(s).command(f"TRUNCATE TABLE IF EXISTS {s.clickhouse_database}.sink_logs")  # as an older sink left it
    recreate(s, admin)
    new = some_events(n_sessions=60, seed=72)
    produce(s, new)
    caplog.set_level(logging.INFO, logger="livemetrics.sink")
    store_all(s)
    # Before, the sink resumed each partition after the old log's offset: the new log's messages below it lost.
    assert_stored_once(s, old + new)
    # each partition with stored offsets said so once: as unrecorded, or (the new log still shorter) ending before
    said = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "] has offsets" in r.getMessage()
    ]
    short = [r.getMessage() for r in caplog.records if "ends before the offset stored" in r.getMessage()]
    assert said and len(said) + len(short) == len(had)
    assert all(any(f"{t}[{p}] " in m for m in said + short) for t, p in had)


def test_a_new_log_is_read_from_its_start_even_when_the_group_has_an_offset_in_it(make_settings):
    """The old log's offsets committed on the new topic (a commit owed through the recreation, landing after
    it): the group's offset lies within the new log but is not this log's."""
    s = make_settings(sink_batch_seconds=0.2)
    migrate(s)
    admin = AdminClient(admin_config(s))  # kept alive to the end (see above)
    old = some_events(n_sessions=20, seed=81)
    produce(s, old)
    store_all(s)
    c = Consumer(consumer_config(s, s.sink_group))
    tps = [TopicPartition(t, p) for t in sink_topics(s) for p in range(s.partitions)]
    owed = [tp for tp in c.committed(tps, timeout=10) if tp.offset > 0]
    c.close()
    recreate(s, admin)
    new = some_events(n_sessions=60, seed=82)
    produce(s, new)
    c = Consumer(consumer_config(s, s.sink_group))
    c.commit(offsets=owed, asynchronous=False)
    c.close()
    store_all(s)
    # Before (bc84850), a new log was read from the group's offset when it lay within the log: the old log's,
    # so the new log's messages below it were skipped.
    assert_stored_once(s, old + new)


def test_a_raw_topic_read_from_its_start_that_keeps_records_past_the_dedup_window_is_named(make_settings, caplog):
    """A topic created before segments rolled hourly (b3ae036) rolls them weekly: it holds events up to a week
    past its retention, longer than any dedup window the settings take, so a read from its start (a reset) can
    store again events whose keys were purged. The sink says so at the reset, naming what to set; before, it said
    nothing. Topics as this version creates them are not named (the settings keep the window past what they
    hold)."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    s, admin, events = stored_log(make_settings, n_sessions=10, seed=51)
    page, checkout = s.topic("page-events"), s.topic("checkout-events")
    weekly = ConfigResource(
        ConfigResource.Type.TOPIC,
        page,
        incremental_configs=[
            ConfigEntry("segment.ms", str(7 * 24 * 3_600_000), incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for fut in admin.incremental_alter_configs([weekly]).values():
        fut.result()
    db = s.clickhouse_database
    for topic in (page, checkout):  # offsets stored past both logs' ends: read from their start (beyond_end)
        get_client(s).command(f"INSERT INTO {db}.sink_offsets VALUES ('{topic}', 0, 100000)")
    before = resets_counted(s, "past_dedup_window")
    caplog.set_level(logging.INFO, logger="livemetrics.sink")
    store_all(s)
    assert_stored_once(s, events)
    named = [r for r in caplog.records if "longer than dedup_window_hours" in r.getMessage()]
    assert len(named) == 1 and named[0].getMessage().startswith(f"sink: {page} keeps records up to 240.1 h"), [
        r.getMessage() for r in named
    ]
    assert "Set the topic's segment.ms to 3600000" in named[0].getMessage()
    assert resets_counted(s, "past_dedup_window") - before == 1
