"""An insert that fails half-way is healed by its retry (real broker, real chdb; docs/clickhouse.md, "One
row per event", migration 008). ClickHouse writes the ``events`` part, then the views of the insert, in
parallel; when one view fails, what the others wrote stays (the batch's keys among them). The sink
retries the batch with the same rows and token, and afterwards ``events`` and every rollup hold each event
exactly once: the retry's key filter keeps the rows whose keys the batch itself stored."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from clickhouse.sink_errors import TRANSIENT, classify
from tests.integration.test_clickhouse_sink import assert_stored_once, committed_everything, scalar, some_events
from tests.integration.test_clickhouse_sink_refused import produce_all
from tests.support.kafka_read import read_topic
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

# Each rollup's figures, and the same figures counted from the raw events (the views' own filters).
ROLLUP_VS_EVENTS = {
    "rollup_traffic_hourly": (
        "SELECT (sum(page_views), sum(checkouts), sum(purchases)) FROM {db}.rollup_traffic_hourly",
        "SELECT (countIf(type = 'page_view'), countIf(type = 'checkout_started'), countIf(type = 'payment_succeeded'))"
        " FROM {db}.events WHERE NOT is_bot",
    ),
    "rollup_pages_hourly": (
        "SELECT (sum(views), uniqExact(seller_id, page_type, category, offer_id)) FROM {db}.rollup_pages_hourly",
        "SELECT (count(), uniqExact(seller_id, page_type, category, offer_id)) FROM {db}.events"
        " WHERE type = 'page_view' AND NOT is_bot",
    ),
    "rollup_payments_hourly": (
        "SELECT (sum(started), sum(succeeded), sum(failed), toString(sum(revenue))) FROM {db}.rollup_payments_hourly",
        "SELECT (countIf(type = 'payment_started'), countIf(type = 'payment_succeeded'), countIf(type = 'payment_failed'),"
        " toString(toDecimal128(sumIf(total, type = 'payment_succeeded'), 4))) FROM {db}.events"
        " WHERE type IN ('payment_started', 'payment_succeeded', 'payment_failed') AND NOT is_bot",
    ),
    # partial rows per session (merged by the fold; a copy changes nothing): every session is there
    "session_updates": (
        "SELECT uniqExact(seller_id, session) FROM {db}.session_updates",
        "SELECT uniqExact(seller_id, cityHash64(session_id)) FROM {db}.events WHERE NOT is_bot",
    ),
    "event_key_batches": (
        "SELECT count() FROM {db}.event_key_batches",
        "SELECT uniqExact(seller_id, event_id) FROM {db}.events",
    ),
}


def rolled_and_recounted(settings) -> tuple[dict, dict]:
    """({table: its figures}, {table: the same figures counted from events})."""
    rolled = {t: scalar(settings, sql) for t, (sql, _) in ROLLUP_VS_EVENTS.items()}
    return rolled, {t: scalar(settings, sql) for t, (_, sql) in ROLLUP_VS_EVENTS.items()}


def page_views(events) -> int:
    return sum(1 for e in events if e.type == "page_view" and not e.is_bot)


def assert_everything_once(settings, events) -> None:
    assert_stored_once(settings, events)
    rolled, recounted = rolled_and_recounted(settings)
    assert rolled == recounted
    assert rolled["rollup_pages_hourly"][0] == page_views(events)
    assert read_topic(settings, "dead-letter", expect=0, timeout=2, settle=1) == []


def first_batch_everywhere(settings, sink, first) -> None:
    sink.start()
    produce_all(settings, first)
    wait_until(
        lambda: (
            scalar(settings, "SELECT count() FROM {db}.events") == len(first)
            and scalar(settings, "SELECT sum(views) FROM {db}.rollup_pages_hourly") == page_views(first)
            and (lambda r: r[0] == r[1])(rolled_and_recounted(settings))
        ),
        30,
        what="the first batch everywhere",
    )


def caught_up(settings, sink) -> None:
    wait_until(lambda: committed_everything(settings), 60, what="offsets committed")
    wait_until(lambda: not sink.lag.stalled() and sink.lag.events_behind() == 0, 10, what="caught up")


def test_a_batch_whose_pages_view_failed_after_events_and_keys_were_written_is_healed_by_the_retry(make_settings):
    # The state a half-way failure leaves, made on purpose: the first attempt of the second batch writes
    # events, its keys and every view but the pages rollup's (dropped for that attempt), then fails as a
    # view's memory limit would (transient); the view is back for the sink's retry.
    s = make_settings(sink_batch_rows=1_000_000, sink_batch_seconds=0.3)
    migrate(s)
    first, later = some_events(n_sessions=10, seed=21), some_events(n_sessions=20, seed=22)
    c, db = get_client(s), s.clickhouse_database
    view = f"{db}.rollup_pages_hourly_mv"
    ((create_view,),) = c.query(
        "SELECT create_table_query FROM system.tables WHERE database = {d:String} AND name = 'rollup_pages_hourly_mv'",
        parameters={"d": db},
    ).result_rows
    sink = EventSink(s)
    insert_events, attempts = sink.store._insert_events, []

    def failing_half_way(prepared, token):
        attempts.append(token)
        if len(attempts) > 1:
            return insert_events(prepared, token)
        get_client(s).command(f"DROP VIEW {view}")
        try:
            insert_events(prepared, token)
        finally:
            get_client(s).command(create_view)
        raise DatabaseError(f"Code: 241. DB::Exception: memory limit exceeded: while pushing to view {view} (injected)")

    try:
        first_batch_everywhere(s, sink, first)
        assert scalar(s, "SELECT count() FROM {db}.event_key_batches") == len(first)
        sink.store._insert_events = failing_half_way
        produce_all(s, later)
        wait_until(lambda: len(attempts) >= 2, 30, what="the retry")
        caught_up(s, sink)
    finally:
        sink.stop()
    assert classify(DatabaseError("Code: 241. memory limit exceeded")) == TRANSIENT
    assert attempts[0] == attempts[1]  # the same batch, retried with its token
    assert_everything_once(s, first + later)


def test_a_view_failing_in_the_middle_of_the_insert_leaves_nothing_short_or_doubled(make_settings):
    # A real failure inside ClickHouse: a view that throws (a transient code) while flagged. What the
    # other views wrote before it failed varies from run to run; the retry must heal every outcome.
    s = make_settings(sink_batch_rows=1_000_000, sink_batch_seconds=0.3, sink_stall_s=1.0)
    migrate(s)
    first, later = some_events(n_sessions=10, seed=23), some_events(n_sessions=20, seed=24)
    c, db = get_client(s), s.clickhouse_database
    sink = EventSink(s)
    try:
        first_batch_everywhere(s, sink, first)
        c.command(f"CREATE TABLE {db}.failing (x UInt8) ENGINE = Memory")
        c.command(f"INSERT INTO {db}.failing VALUES (1)")
        c.command(f"CREATE TABLE {db}.failing_sink (x UInt8) ENGINE = Null")
        c.command(
            f"CREATE MATERIALIZED VIEW {db}.failing_mv TO {db}.failing_sink AS SELECT throwIf("
            f"(SELECT count() FROM {db}.failing) > 0, 'failing on purpose', toInt32(241)) AS x FROM {db}.events "
            "SETTINGS allow_custom_error_code_in_throwif = 1"
        )
        produce_all(s, later)
        wait_until(lambda: sink.lag.stalled(), 30, what="the sink stalled")
        c.command(f"TRUNCATE TABLE {db}.failing")
        caught_up(s, sink)
    finally:
        sink.stop()
    assert_everything_once(s, first + later)
