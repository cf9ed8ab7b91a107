"""Each (seller_id, event_id) is stored once (migrations 007 and 008, queries/sink_events_unseen.sql), on the real
broker and engine: copies in Kafka (a storefront's retry after a 503 that had landed anyway) within one
batch, across batches and across a sink restart are dropped, and the rollups count each event once; the
same event_id from two sellers is two events; the purge forgets keys past dedup_window_hours."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from confluent_kafka import Consumer, Message

from clickhouse import events_json
from clickhouse.client import EVENTS_INSERT_SETTINGS, get_client
from clickhouse.event_keys import purge_event_keys
from clickhouse.migrate import migrate
from clickhouse.session_fold import SessionFolder
from clickhouse.sink import EventSink
from clickhouse.sink_batch import Batch
from livemetrics.contract import encode
from livemetrics.kafka_config import consumer_config
from tests.integration.test_clickhouse_sink import FAST_BATCH_S, produce, scalar, some_events
from tests.support.servers import wait_until
from tests.support.sink_progress import sink_caught_up

pytestmark = pytest.mark.integration


def stored(settings) -> tuple[int, int, int]:
    """Rows in events, distinct (seller_id, event_id) among them, events counted by the traffic rollup."""
    return (
        scalar(settings, "SELECT count() FROM {db}.events"),
        scalar(settings, "SELECT uniqExact(seller_id, event_id) FROM {db}.events"),
        scalar(settings, "SELECT sum(page_views) + sum(checkouts) + sum(purchases) FROM {db}.rollup_traffic_hourly"),
    )


def rolled_up(events) -> int:
    return sum(1 for e in events if not e.is_bot and e.type in ("page_view", "checkout_started", "payment_succeeded"))


def revenue(settings) -> str:
    return str(scalar(settings, "SELECT sum(revenue) FROM {db}.rollup_payments_hourly"))


def read_all(settings, topics, n: int) -> list:
    """The next ``n`` messages of ``topics`` from the start, read by a consumer of its own group."""
    c = Consumer(consumer_config(settings, "read-" + uuid.uuid4().hex[:6]))
    c.subscribe(topics)
    out: list = []
    deadline = time.monotonic() + 30
    while len(out) < n and time.monotonic() < deadline:
        out += [m for m in c.consume(1000, 0.5) if not m.error()]
    c.close()
    assert len(out) == n
    return out


def test_copies_are_stored_once_within_a_batch_across_batches_and_across_a_restart(make_settings):
    settings = make_settings(sink_batch_seconds=FAST_BATCH_S)
    migrate(settings)
    events = some_events(n_sessions=40, seed=11)
    sink = EventSink(settings)
    # batch 1: every event, and a copy of every 4th right behind it (the retry in the same batch)
    first = [c for i, e in enumerate(events) for c in ([e, e] if i % 4 == 0 else [e])]
    produce(settings, first)
    sink.add(read_all(settings, sink.topics, len(first)))
    sink.flush()
    assert stored(settings) == (len(events), len(events), rolled_up(events))
    before = revenue(settings)
    assert before != "0"
    # batch 2: copies of every 3rd event, new Kafka messages (new offsets, so a new dedup token)
    again = events[::3]
    produce(settings, again)
    sink.add(read_all(settings, sink.topics, len(first) + len(again))[len(first) :])
    sink.flush()
    assert stored(settings) == (len(events), len(events), rolled_up(events))
    sink.consumer.close()

    # a sink started afresh (same group; nothing committed by the hand-fed batches above) re-reads the
    # topics from the start plus more copies: every batch it writes is all copies, and still it commits
    produce(settings, events[1::5])
    restarted = EventSink(settings).start()
    try:
        wait_until(lambda: sink_caught_up(settings, restarted.topics), 60, interval=0.3, what="the sink at the end")
    finally:
        restarted.stop()
    assert stored(settings) == (len(events), len(events), rolled_up(events))
    assert revenue(settings) == before


def test_the_same_event_id_from_two_sellers_is_two_events(make_settings):
    settings = make_settings(sink_batch_seconds=FAST_BATCH_S)
    migrate(settings)
    mine = some_events(n_sessions=5, seed=12)
    # another storefront sends events with ids it saw elsewhere: they are its own events, all stored
    theirs = [msgspec.structs.replace(e, seller_id="s-other", session_id="other-" + e.session_id) for e in mine]
    produce(settings, mine + theirs)
    sink = EventSink(settings).start()
    try:
        wait_until(lambda: scalar(settings, "SELECT count() FROM {db}.events") >= 2 * len(mine), 60, what="rows")
        sink.flush()
    finally:
        sink.stop()
    assert stored(settings) == (2 * len(mine), 2 * len(mine), 2 * rolled_up(mine))
    assert scalar(settings, "SELECT uniqExact(event_id) FROM {db}.events") == len(mine)


def test_the_server_statement_filters_the_same_way(settings):
    # chdb cannot read a request body (input()); the server's statement runs here with the same lines
    # read by file() instead, so its filter and the position checks it wraps are run by the engine
    migrate(settings)
    events = some_events(n_sessions=5, seed=13)
    values = [encode(e) for e in events]
    values = values + values[:7] + [values[0]]  # copies behind the originals, one twice

    def run(offset: int) -> None:
        batch = Batch("alerts")
        batch.add(
            [Message(topic="t.page-events", partition=0, offset=offset + i, value=v) for i, v in enumerate(values)]
        )
        folder = tempfile.mkdtemp(prefix="lm-dedup-")
        path = os.path.join(folder, "lines.jsonl")
        with open(path, "wb") as f:
            f.writelines(events_json._lines(batch.heads, batch.values))
        sql = events_json.server_insert_sql(settings.clickhouse_database, len(values))
        assert sql.count("FROM input('") == 1 and sql.endswith("\nFORMAT JSONCompactEachRow")
        sql = sql.replace("FROM input('", f"FROM file('{path}', 'JSONCompactEachRow', '")
        sql = sql.removesuffix("\nFORMAT JSONCompactEachRow")
        get_client(settings).command(
            sql,
            settings={
                **events_json.JSON_INPUT_SETTINGS,
                **EVENTS_INSERT_SETTINGS,
                "insert_deduplication_token": batch.token(),
            },
        )

    run(0)
    assert stored(settings) == (len(events), len(events), rolled_up(events))
    # the first of equal keys is kept (Kafka order)
    assert scalar(settings, f"SELECT kafka_offset FROM {{db}}.events WHERE event_id = '{events[0].event_id}'") == 0
    run(len(values))  # the same lines again at new offsets: all copies
    assert stored(settings) == (len(events), len(events), rolled_up(events))


def test_the_purge_forgets_keys_past_the_window(settings):
    migrate(settings)
    events = some_events(n_sessions=5, seed=14)
    produce(settings, events)
    sink = EventSink(settings)
    sink.add(read_all(settings, sink.topics, len(events)))
    sink.flush()
    keys = scalar(settings, "SELECT count() FROM {db}.event_key_batches")
    assert keys == len(events)
    now = datetime.now(UTC)
    assert purge_event_keys(settings, now=now + timedelta(hours=settings.dedup_window_hours - 1)) == 0
    assert purge_event_keys(settings, now=now + timedelta(hours=settings.dedup_window_hours, minutes=1)) == keys
    assert scalar(settings, "SELECT count() FROM {db}.event_key_batches") == 0
    # forgotten: a copy arriving now is stored again
    produce(settings, events[:3])
    sink.add(read_all(settings, sink.topics, len(events) + 3)[len(events) :])
    sink.flush()
    assert scalar(settings, "SELECT count() FROM {db}.events") == len(events) + 3
    sink.consumer.close()


def test_the_sink_fold_thread_purges_keys_when_it_starts(make_settings):
    # the least window the settings take for a 1-h retention: retention + 2 h
    s = make_settings(raw_retention_hours=1, pii_retention_hours=1, dedup_window_hours=3, session_fold_interval_s=60)
    migrate(s)
    db = s.clickhouse_database
    get_client(s).command(
        f"INSERT INTO {db}.event_key_batches (key, stored_at) VALUES (1, now('UTC') - INTERVAL 4 HOUR), (2, now('UTC'))"
    )
    folder = SessionFolder(s).start()
    try:
        wait_until(
            lambda: scalar(s, "SELECT count() FROM {db}.event_key_batches WHERE key = 1") == 0,
            30,
            interval=0.2,
            what="the key stored 4 hours ago purged",
        )
    finally:
        folder.stop()
    assert scalar(s, "SELECT count() FROM {db}.event_key_batches") == 1
