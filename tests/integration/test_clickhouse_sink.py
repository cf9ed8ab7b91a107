"""The schema and the sink on the real engine and a real broker: columns from the contract, migrations
that re-run, no duplicates on redelivery, nothing lost or doubled by a crash between insert and commit,
the personal-data TTL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import REGISTRY

from clickhouse.client import get_client
from clickhouse.columns import KAFKA_COLUMNS
from clickhouse.migrate import migrate, migration_files, statements
from clickhouse.sink import EventSink
from livemetrics.contract import COLUMNS, PII_COLUMNS, TOPIC_FOR_TYPE, encode
from livemetrics.kafka_config import consumer_config
from livemetrics.settings import RAW_TOPICS
from tests.support import oracle
from tests.support.kafka_write import writer
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration
# A started sink stores a batch this long after its first row (the default, 2 s, is waited for in each test that
# waits for rows and is not about batching).
FAST_BATCH_S = 0.2


def produce(settings, events) -> None:
    p = writer(settings)
    for e in events:
        p.produce(settings.topic(TOPIC_FOR_TYPE[e.type]), key=e.session_id.encode(), value=encode(e))
    assert p.flush(30) == 0


def scalar(settings, sql):
    return get_client(settings).query(sql.replace("{db}", settings.clickhouse_database)).result_rows[0][0]


def some_events(n_sessions=60, days_ago=1.0, seed=1):
    start = datetime.now(UTC) - timedelta(days=days_ago)
    return oracle.generate(seed, ("s1", "s2"), start, days=0.5, sessions_per_seller=n_sessions)


def totals(settings):
    return (
        scalar(settings, "SELECT count() FROM {db}.events"),
        scalar(settings, "SELECT uniqExact(event_id) FROM {db}.events"),
        scalar(settings, "SELECT sum(page_views) + sum(checkouts) + sum(purchases) FROM {db}.rollup_traffic_hourly"),
    )


def rolled(events) -> int:
    """What ``events`` add to the hourly rollup's page views + checkouts + purchases (``totals``' third figure)."""
    return sum(1 for e in events if not e.is_bot and e.type in ("page_view", "checkout_started", "payment_succeeded"))


def assert_stored_once(settings, events) -> None:
    """Every event in ``events`` exactly once, in the raw table and in the hourly rollup."""
    n, distinct, in_rollup = totals(settings)
    assert n == distinct == len(events)
    assert in_rollup == rolled(events)


def test_events_table_columns_are_the_contract_plus_kafka_position(settings):
    migrate(settings)
    rows = get_client(settings).query(f"DESCRIBE TABLE {settings.clickhouse_database}.events").result_rows
    assert [r[0] for r in rows] == [c[0] for c in COLUMNS] + list(KAFKA_COLUMNS)
    types = {r[0]: r[1] for r in rows}
    assert {c[0]: types[c[0]] for c in COLUMNS} == {c[0]: c[1] for c in COLUMNS}
    ttl = {r[0]: r[6] for r in rows}  # ttl_expression
    assert all("INTERVAL" in ttl[c] or "toIntervalDay" in ttl[c] for c in PII_COLUMNS), ttl
    assert not ttl["session_id"]


def test_migrations_re_run_cleanly(settings):
    assert len(migrate(settings)) == len(migration_files())
    assert migrate(settings) == []
    c = get_client(settings)
    for _, _, sql in migration_files():  # every statement itself is idempotent, too
        for stmt in statements(sql, settings):
            c.command(stmt)
    assert migrate(settings) == []


def test_the_same_batch_twice_leaves_no_duplicates(settings):
    migrate(settings)
    events = some_events()
    produce(settings, events)
    sink = EventSink(settings)
    c = Consumer(consumer_config(settings, "read-" + uuid.uuid4().hex[:6]))
    c.subscribe(sink.topics)
    batch: list = []
    deadline = time.monotonic() + 30
    while len(batch) < len(events) and time.monotonic() < deadline:
        batch += [m for m in c.consume(1000, 0.5) if not m.error()]
    c.close()
    assert len(batch) == len(events)
    sink.add(batch)
    assert sink.flush() == len(events)
    first = totals(settings)
    assert first[0] == first[1] == len(events) and first[2] > 0
    sink.add(batch)  # redelivered: same offsets, same token
    assert sink.flush() == len(events)  # acknowledged (ClickHouse dropped the copy)
    assert totals(settings) == first
    sink.consumer.close()


class CrashBeforeCommit(Exception):
    pass


class DiesBeforeCommit:
    """The real consumer, except that the process "dies" after ClickHouse acknowledged, before Kafka did."""

    def __init__(self, consumer):
        self._c = consumer

    def __getattr__(self, name):
        return getattr(self._c, name)

    def commit(self, *a, **kw):
        raise CrashBeforeCommit()


def test_a_crash_between_insert_and_commit_loses_and_duplicates_nothing(make_settings):
    settings = make_settings(sink_batch_seconds=FAST_BATCH_S)
    migrate(settings)
    events = some_events(seed=2)
    produce(settings, events)
    crashing = EventSink(settings)

    crashing.consumer = DiesBeforeCommit(crashing.consumer)
    crashing.consumer.subscribe(crashing.topics, on_assign=crashing._on_assign)
    inserted = 0
    deadline = time.monotonic() + 30
    while inserted == 0 and time.monotonic() < deadline:
        try:
            crashing.poll_once(0.5)
            crashing.flush()  # whatever was consumed, due or not
        except CrashBeforeCommit:
            inserted = scalar(settings, "SELECT count() FROM {db}.events")
    assert 0 < inserted
    crashing.consumer.close()
    sink = EventSink(settings).start()  # same group: nothing was committed
    try:
        wait_until(lambda: scalar(settings, "SELECT count() FROM {db}.events") >= len(events), 30, what="all rows")
        sink.flush()
    finally:
        sink.stop()
    assert_stored_once(settings, events)


def test_personal_data_expires_before_the_rows(make_settings):
    s = make_settings(pii_ttl_days=2, sink_batch_seconds=FAST_BATCH_S)
    migrate(s)
    old = some_events(n_sessions=40, days_ago=4, seed=3)
    new = some_events(n_sessions=40, days_ago=0.7, seed=4)
    produce(s, old + new)
    sink = EventSink(s).start()
    try:
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") == len(old) + len(new), 30, what="rows")
    finally:
        sink.stop()
    get_client(s).command(f"OPTIMIZE TABLE {s.clickhouse_database}.events FINAL")
    cutoff = int((datetime.now(UTC) - timedelta(days=2)).timestamp())
    pii = " OR ".join(f"{c} != ''" for c in PII_COLUMNS)
    assert scalar(s, f"SELECT count() FROM {{db}}.events WHERE toUnixTimestamp(ts) < {cutoff} AND ({pii})") == 0
    assert scalar(s, f"SELECT count() FROM {{db}}.events WHERE toUnixTimestamp(ts) < {cutoff}") > 0
    assert (
        scalar(
            s, f"SELECT count() FROM {{db}}.events WHERE toUnixTimestamp(ts) > {cutoff + 3600} AND customer_email != ''"
        )
        > 0
    )


def test_the_personal_data_ttl_follows_the_setting(make_settings):
    s = make_settings(pii_ttl_days=30)
    migrate(s)
    shorter = s.model_copy(update={"pii_ttl_days": 7})
    migrate(shorter)
    for table in ("events", "payment_errors"):
        ttl = {r[0]: r[6] for r in get_client(s).query(f"DESCRIBE TABLE {s.clickhouse_database}.{table}").result_rows}
        assert all("toIntervalDay(7)" in ttl[c] for c in PII_COLUMNS), ttl
    assert migrate(shorter) == []


def test_values_that_are_not_events_are_skipped_logged_and_committed(make_settings, caplog):
    settings = make_settings(sink_batch_seconds=FAST_BATCH_S)
    migrate(settings)
    events = some_events(n_sessions=20, seed=5)
    forged = encode(events[0]).replace(events[0].event_id.encode(), str(uuid.uuid4()).encode())
    bad = [b"{not json", b'{"x": 1}', None, encode(events[1]) + b'],\n[0,"t",0,999999999,' + forged]
    topic = settings.topic("page-events")
    p = writer(settings)
    for i, e in enumerate(events):
        p.produce(settings.topic(TOPIC_FOR_TYPE[e.type]), key=e.session_id.encode(), value=encode(e))
        if i % 10 == 5 and bad:
            p.produce(topic, key=e.session_id.encode(), value=bad.pop())
    assert not bad and p.flush(30) == 0
    caplog.set_level("WARNING", logger="livemetrics.sink")
    sink = EventSink(settings).start()
    try:
        wait_until(lambda: scalar(settings, "SELECT count() FROM {db}.events") >= len(events), 30, what="all rows")
        wait_until(
            lambda: len([r for r in caplog.records if "undecodable" in r.getMessage()]) == 4, 10, what="warnings"
        )
    finally:
        sink.stop()
    n, distinct, _ = totals(settings)
    assert n == distinct == len(events)
    assert scalar(settings, "SELECT count() FROM {db}.events WHERE kafka_offset > 100000") == 0  # nothing forged
    assert committed_everything(settings)


def offsets(settings) -> tuple[dict, dict]:
    """The sink group's committed offsets and the topics' end offsets, per raw-topic partition."""
    c = Consumer(consumer_config(settings, settings.sink_group))
    try:
        parts = [TopicPartition(settings.topic(t), i) for t in RAW_TOPICS for i in range(settings.partitions)]
        committed = {(tp.topic, tp.partition): tp.offset for tp in c.committed(parts, timeout=10)}
        ends = {(tp.topic, tp.partition): c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    finally:
        c.close()
    return committed, ends


def committed_everything(settings) -> bool:
    committed, ends = offsets(settings)
    return all(committed[k] == end for k, end in ends.items() if end > 0)


def test_stop_inserts_what_is_buffered(make_settings):
    s = make_settings(sink_batch_rows=1_000_000, sink_batch_seconds=3600)
    migrate(s)
    events = some_events(n_sessions=20, seed=6)
    produce(s, events)
    sink = EventSink(s).start()
    try:
        wait_until(lambda: sink.held == len(events), 30, what="all buffered")
        assert scalar(s, "SELECT count() FROM {db}.events") == 0  # not due: neither size nor time
    finally:
        sink.stop()
    n, distinct, _ = totals(s)
    assert n == distinct == len(events) and sink.rows_written == len(events)
    assert committed_everything(s)


def test_a_failed_insert_holds_the_commits_and_is_retried_without_loss_or_duplicates(make_settings, caplog):
    s = make_settings(sink_batch_rows=25, sink_batch_seconds=0.2)  # many small batches, one in flight
    migrate(s)
    first, later = some_events(n_sessions=20, seed=7), some_events(n_sessions=20, seed=8)
    db = s.clickhouse_database
    caplog.set_level("INFO", logger="livemetrics.sink")  # what an operator sees: a line per retry would show
    failed_before = REGISTRY.get_sample_value("livemetrics_sink_batches_failed_total") or 0.0
    sink = EventSink(s).start()
    try:
        produce(s, first)
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") == len(first), 30, what="first rows")
        wait_until(lambda: committed_everything(s), 30, what="first offsets committed")
        before, _ = offsets(s)
        get_client(s).command(f"RENAME TABLE {db}.events TO {db}.events_away")  # inserts fail from now on
        produce(s, later)
        # consuming goes on while the insert fails and is retried: every later message is held, and a
        # retry after that also failed; nothing after the failed batch may be committed meanwhile
        failures = lambda: REGISTRY.get_sample_value("livemetrics_sink_batches_failed_total") - failed_before  # noqa: E731
        wait_until(lambda: failures() >= 1, 30, what="a failure")
        wait_until(lambda: sink.held == len(later), 30, what="everything later consumed")
        seen = failures()
        wait_until(lambda: failures() > seen, 30, what="one more failed retry")
        assert offsets(s)[0] == before
        get_client(s).command(f"RENAME TABLE {db}.events_away TO {db}.events")
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") >= len(first) + len(later), 60, what="all rows")
        wait_until(lambda: committed_everything(s), 30, what="offsets committed")
    finally:
        sink.stop()
    assert_stored_once(s, first + later)
    # the outage is logged once when it begins and once when it ends, not once per failed retry
    lines = [r.getMessage() for r in caplog.records if r.name == "livemetrics.sink"]
    lost = [line for line in lines if line.startswith("sink: lost ClickHouse since ")]
    back = [line for line in lines if line.startswith("sink: ClickHouse back after ")]
    assert len(lost) == 1 and "events" in lost[0], lines  # ClickHouse's error names the missing table
    assert len(back) == 1 and f"({int(failures())} failed tries)" in back[0], lines
    assert len(lines) == 2, lines


def test_a_rebalance_while_rows_are_buffered_duplicates_nothing(make_settings):
    s = make_settings(sink_batch_rows=100_000, sink_batch_seconds=4)
    migrate(s)
    events = some_events(n_sessions=60, seed=9)
    half = len(events) // 2
    first = EventSink(s).start()
    try:
        produce(s, events[:half])
        wait_until(lambda: first.held == half, 30, what="the first half buffered")
        second = EventSink(s).start()  # the group rebalances: the buffered rows must not be stored twice
        try:
            produce(s, events[half:])
            wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") >= len(events), 60, what="all rows")
            wait_until(lambda: committed_everything(s), 30, what="offsets committed")
            # any batch still buffered is due within these 5 s: the count must not grow past the events
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                assert scalar(s, "SELECT count() FROM {db}.events") == len(events), "rows stored twice"
                time.sleep(0.2)  # polling interval: the count is asserted at every poll
        finally:
            second.stop()
    finally:
        first.stop()
    assert_stored_once(s, events)
