"""What a sink stores again after a failure between ClickHouse and Kafka, on the real broker and engine:
nothing. A batch whose commit failed is committed again, not inserted again; an assignment whose lookup of
where to resume fails at first asks again instead of reading from the group's committed offsets (which
confluent-kafka would do if the callback raised), so rows stored after them are not read again."""

from __future__ import annotations

import logging
from concurrent.futures import Future

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import REGISTRY

from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from clickhouse.sink_batch import Batch
from livemetrics.settings import RAW_TOPICS
from tests.integration.test_clickhouse_dedup import read_all
from tests.integration.test_clickhouse_sink import assert_stored_once, produce, scalar, some_events
from tests.support.servers import wait_until
from tests.support.sink_progress import sink_caught_up

pytestmark = pytest.mark.integration


def raw_topics(s) -> list[str]:
    return [s.topic(t) for t in RAW_TOPICS]


def caught_up(s) -> bool:
    try:
        return sink_caught_up(s, raw_topics(s))
    except KafkaException:  # the group's coordinator not answering yet (a broker just started): not yet
        return False


def events_rows_metric() -> float:
    return REGISTRY.get_sample_value("livemetrics_sink_rows_total", {"table": "events"}) or 0.0


class CommitFailsFirst:
    """The real consumer, except that its first ``failures`` commits fail as they did after the broker's
    SIGKILL in the chaos test (the coordinator gone): after ClickHouse acknowledged the batch."""

    def __init__(self, consumer, failures: int):
        self._c, self.failures, self.commits = consumer, failures, 0

    def __getattr__(self, name):
        return getattr(self._c, name)

    def commit(self, *a, **kw):
        self.commits += 1
        if self.commits <= self.failures:
            raise KafkaException(KafkaError(KafkaError._WAIT_COORD, "Commit failed: Local: Waiting for coordinator"))
        return self._c.commit(*a, **kw)


def test_a_batch_whose_commit_failed_is_committed_again_not_inserted_again(make_settings):
    s = make_settings(sink_batch_seconds=0.2)
    migrate(s)
    events = some_events(n_sessions=30, seed=11)
    produce(s, events)
    before = events_rows_metric()
    sink = EventSink(s)
    sink.consumer = CommitFailsFirst(sink.consumer, failures=2)
    sink.start()
    try:
        wait_until(lambda: caught_up(s), 60, what="everything stored and committed")
    finally:
        sink.stop()
    assert sink.consumer.commits > 2  # the failed commits were tried again
    assert_stored_once(s, events)
    # Before, the batch went back to the queue and was inserted again with its token (ClickHouse dropped
    # the copy): every failed commit cost one more insert of the whole batch (rows counted again).
    assert events_rows_metric() - before == len(events)


def store_without_commit(s, n: int) -> None:
    """Store the first ``n`` raw messages as the sink does, in two batches, and commit nothing (a sink
    SIGKILLed after its inserts, before its commits): ClickHouse has the rows, Kafka no offsets."""
    sink = EventSink(s)
    # which log the offsets come from, as the sink's assignment records it before anything is stored
    ids = sink.logs.topic_ids(sink.topics)
    sink.logs.record({(t, p): ids[t] for t in sink.topics for p in range(s.partitions)})
    msgs = read_all(s, sink.topics, n)
    for part in (msgs[: n // 2], msgs[n // 2 :]):
        batch = Batch(sink.alerts_topic)
        batch.add(part)
        prepared: Future = Future()
        prepared.set_result(sink.store.prepare(batch))
        sink.store.write(batch, prepared)
    sink.consumer.close()


def test_an_assignment_whose_lookup_fails_at_first_still_resumes_after_what_is_stored(make_settings, caplog):
    s = make_settings(sink_batch_seconds=0.2)
    migrate(s)
    events = some_events(n_sessions=30, seed=12)
    produce(s, events)
    store_without_commit(s, len(events))
    db = s.clickhouse_database
    # where to resume cannot be read at first: ClickHouse answers, the table is away (UNKNOWN_TABLE)
    get_client(s).command(f"RENAME TABLE {db}.sink_offsets TO {db}.sink_offsets_away")
    caplog.set_level(logging.INFO, logger="livemetrics.sink")
    sink = EventSink(s).start()
    try:
        wait_until(lambda: sink.clickhouse.down, 30, what="the sink's lookup failed")
        get_client(s).command(f"RENAME TABLE {db}.sink_offsets_away TO {db}.sink_offsets")
        wait_until(lambda: caught_up(s), 60, what="everything committed")
    finally:
        sink.stop()
    # Before, the callback raised and confluent-kafka assigned the partitions at the committed offsets
    # (none: the earliest), so the sink read every stored message again and inserted it with another
    # token: only the event keys' filter kept the copies out (0 rows written is right: all were stored).
    assert sink.rows_written == 0
    assert_stored_once(s, events)
    assigned = [r.getMessage() for r in caplog.records if r.name == "livemetrics.sink.assign"]
    assert assigned and all(f"{t}[{p}] from " in assigned[-1] for t in raw_topics(s) for p in range(s.partitions))


def test_a_batch_half_stored_when_its_process_died_is_stored_again_whole_not_twice(make_settings, caplog):
    """`make chaos` (2026-12-07): the API SIGKILLed while its sink stored a batch left the batch's rows in
    events, but not in event_key_batches or sink_offsets (an insert's tables are written one after another).
    The next sink resumed after the batch before it and stored every message of that batch again under
    another token: 2,700 events twice. Here the half-write is made by storing the second batch with those two
    views detached."""
    s = make_settings(sink_batch_seconds=0.2)
    migrate(s)
    events = some_events(n_sessions=30, seed=13)
    produce(s, events)
    db, c = s.clickhouse_database, get_client(s)
    sink = EventSink(s)
    ids = sink.logs.topic_ids(sink.topics)
    sink.logs.record({(t, p): ids[t] for t in sink.topics for p in range(s.partitions)})
    n = len(events)
    msgs = read_all(s, sink.topics, n)
    half_views = ("sink_offsets_events_mv", "event_key_batches_mv")
    for i, part in enumerate((msgs[: n // 2], msgs[n // 2 :])):
        if i == 1:
            for view in half_views:
                c.command(f"DETACH TABLE {db}.{view}")
        batch = Batch(sink.alerts_topic)
        batch.add(part)
        prepared: Future = Future()
        prepared.set_result(sink.store.prepare(batch))
        sink.store.write(batch, prepared)
    for view in half_views:
        c.command(f"ATTACH TABLE {db}.{view}")
    sink.consumer.close()
    assert scalar(s, "SELECT count() FROM {db}.events") == n  # the second batch's rows are in events
    caplog.set_level(logging.INFO, logger="livemetrics.sink")
    sink = EventSink(s).start()
    try:
        wait_until(lambda: caught_up(s), 60, what="everything committed")
    finally:
        sink.stop()
    assert_stored_once(s, events)  # events and the hourly rollup: each event once (was 353 rows for 235)
    assert scalar(s, "SELECT count() FROM {db}.event_key_batches") == n  # the keys the half-write missed
    assert any("stored again whole" in r.getMessage() for r in caplog.records), "no batch was stored again"
