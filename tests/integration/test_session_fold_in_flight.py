"""A session fold that runs while an insert into events is still running (longer than the grace: a
loaded machine, a slow server) must not pass the bucket that insert's session rows are labelled with: they
become visible only at its commit, and a watermark already past them would leave their sessions out of
session_sums for good (clickhouse/inserts_in_flight.py). Real ClickHouse; a loaded machine is stood in for
by a session_updates view that sleeps on one seller's rows: it labels them when it starts (its now()) and
writes them when its sleep ends, the window a busy server has between the two."""

from __future__ import annotations

import threading

import pytest

from clickhouse import query, session_fold
from clickhouse.client import get_client
from clickhouse.inserts_in_flight import IN_FLIGHT
from clickhouse.migrate import migrate
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration

SLOW_ROWS = 8  # the view sleeps one second on each


def slow_view_for(settings, seller: str) -> None:
    """Migration 013's view again, sleeping a second on each row of ``seller``'s after its now()."""
    c, db = get_client(settings), settings.clickhouse_database
    ((create,),) = c.query(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND "
        "name = 'session_updates_capped_mv'",
        parameters={"db": db},
    ).result_rows
    assert create.count("WHERE NOT is_bot") == 1, create
    c.command(f"DROP VIEW {db}.session_updates_capped_mv")
    c.command(
        create.replace("WHERE NOT is_bot", f"WHERE NOT is_bot AND (seller_id != '{seller}' OR sleepEachRow(1) = 0)")
    )


def insert_sessions(settings, seller: str, n: int) -> None:
    db = settings.clickhouse_database
    get_client(settings).command(
        f"INSERT INTO {db}.events (event_id, type, seller_id, session_id, ts, received_at, page_type) "
        f"SELECT generateUUIDv4(), 'checkout_started', '{seller}', concat('{seller}-', toString(number)), "
        f"now64(3), now64(3), 'checkout' FROM numbers({n})",
        settings={"function_sleep_max_microseconds_per_block": 60_000_000},
    )


def server_now(settings) -> int:
    return int(get_client(settings).query("SELECT toUInt32(now())").result_rows[0][0])


def furthest_sessions(settings) -> dict[str, int]:
    db = settings.clickhouse_database
    rows = get_client(settings).query(
        f"SELECT seller_id, sum(sessions) FROM {db}.session_sums WHERE kind = 'furthest' GROUP BY seller_id"
    )
    return dict(rows.result_rows)


def test_a_fold_during_a_long_insert_leaves_its_rows_for_a_later_fold(make_settings):
    settings = make_settings(session_fold_grace_s=0, session_fold_interval_s=0)
    migrate(settings)
    slow_view_for(settings, "s-slow")
    # start in the last seconds of a 10-s bucket, so that the bucket ends while the slow insert runs
    wait_until(lambda: server_now(settings) % 10 >= 7, 15, interval=0.1, what="second 7 of a 10-s bucket")
    started_in = server_now(settings) // 10 * 10
    insert_sessions(settings, "s-fast", 3)  # rows the fold can take: they move its watermark
    done = threading.Event()

    def slow() -> None:
        with IN_FLIGHT.inserting():  # as the sink does around every insert (clickhouse/sink_store.py)
            insert_sessions(settings, "s-slow", SLOW_ROWS)
        done.set()

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    wait_until(lambda: server_now(settings) >= started_in + 10, 15, interval=0.1, what="the next bucket")
    assert not done.is_set(), "the slow insert ended before the fold: the test shows nothing"
    session_fold.fold(settings)  # the server's clock is past the slow rows' bucket, the grace is 0
    assert query.folded_to(settings) <= started_in, "the fold passed the bucket of an insert still running"
    thread.join(SLOW_ROWS + 30)
    assert done.is_set()
    session_fold.fold(settings)
    assert query.folded_to(settings) > started_in
    assert furthest_sessions(settings) == {"s-fast": 3, "s-slow": SLOW_ROWS}
