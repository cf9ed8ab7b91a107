"""The sink's process folds session rows in the background (clickhouse/session_fold.py): with the real
sink, Kafka and ClickHouse, every stored session ends up in session_sums exactly once; a database that
had session_facts (before migration 005) upgrades with `migrate` and reports its old sessions exactly;
so does one whose sessions were folded before session_folded (migration 011), where the reports read
the folded state of every session with a session_state entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from confluent_kafka import Producer

from clickhouse import query, session_fold
from clickhouse.client import get_client
from clickhouse.migrate import migrate, migration_files, statements
from clickhouse.sink import EventSink
from livemetrics.contract import TOPIC_FOR_TYPE, encode
from livemetrics.kafka_config import producer_config
from tests.support import oracle
from tests.support.old_schema import schema_before
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def past_last_insert(settings) -> int:
    """A fold watermark just past the 10 s bucket of the last insert. The test states the time instead of
    waiting for the server's clock to close that bucket: it inserts nothing more, which is what makes
    folding an unfinished bucket safe."""
    ((bucket,),) = (
        get_client(settings)
        .query(f"SELECT toUInt32(max(inserted)) + 10 FROM {settings.clickhouse_database}.session_updates")
        .result_rows
    )
    return int(bucket)


def assert_folded_has_every_state(settings) -> None:
    """session_folded's invariant (migration 011): the newest row of every key with a session_state entry
    is that entry, and no other key has rows."""
    db = settings.clickhouse_database
    columns = "version, start_hour, furthest, categories, offers, had_before, before_start_hour, before_furthest, before_categories, before_offers"
    newest = (
        f"SELECT bitOr(bitShiftLeft(toUInt128(seller_hash), 64), toUInt128(session)) AS key, "
        f"argMax(tuple({columns}), version) AS state FROM {db}.session_folded GROUP BY key"
    )
    entries = f"SELECT key, tuple({columns}) AS state FROM {db}.session_state"
    ((states, folded, differ),) = (
        get_client(settings)
        .query(
            f"SELECT (SELECT count() FROM {db}.session_state), (SELECT uniqExact(seller_hash, session) FROM "
            f"{db}.session_folded), (SELECT count() FROM ({entries}) AS e FULL JOIN ({newest}) AS f ON e.key = f.key "
            "WHERE toString(e.state) != toString(f.state))"
        )
        .result_rows
    )
    assert (folded, differ) == (states, 0), f"{states} entries, {folded} sessions in session_folded, {differ} differ"
    # and session_folded_join (migration 014), when it is in use: every entry, nothing else but its marker
    marker_to, marker_id = session_fold.join_marker(settings)
    if not (marker_id and marker_to >= query.folded_to(settings)):
        return
    joined = (
        f"SELECT bitOr(bitShiftLeft(toUInt128(seller_hash), 64), toUInt128(session)) AS key, tuple({columns}) AS state "
        f"FROM {db}.session_folded_join WHERE NOT (seller_hash = 0 AND session = 0)"
    )
    ((held, differ),) = (
        get_client(settings)
        .query(
            f"SELECT (SELECT count() FROM ({joined})), (SELECT count() FROM ({entries}) AS e FULL JOIN ({joined}) AS j "
            "ON e.key = j.key WHERE toString(e.state) != toString(j.state))"
        )
        .result_rows
    )
    assert (held, differ) == (states, 0), f"{states} entries, {held} sessions in session_folded_join, {differ} differ"


def test_the_sink_keeps_session_sums_folded(make_settings):
    # small batches and frequent folds: steps run while the sink is inserting
    settings = make_settings(sink_batch_rows=100, session_fold_interval_s=0.5, session_fold_grace_s=1)
    migrate(settings)
    events = oracle.generate(
        3, ("s-one", "s-two"), datetime.now(UTC) - timedelta(days=2), days=2, sessions_per_seller=60
    )
    sessions = {(e.seller_id, e.session_id) for e in events if not e.is_bot}
    p = Producer(producer_config(settings))
    for e in events:
        p.produce(settings.topic(TOPIC_FOR_TYPE[e.type]), key=e.session_id.encode(), value=encode(e))
    assert p.flush(30) == 0
    db = settings.clickhouse_database
    c = get_client(settings)
    sink = EventSink(settings).start()
    try:
        wait_until(
            lambda: c.query(f"SELECT count() FROM {db}.events").result_rows[0][0] == len(events),
            60,
            interval=0.2,
            what="all events in ClickHouse",
        )
        ((last,),) = c.query(f"SELECT toUInt32(max(inserted)) FROM {db}.session_updates").result_rows
        wait_until(lambda: query.folded_to(settings) > last, 40, interval=0.5, what="the fold past the last insert")
        # one furthest step per session, each session once: the deltas of all the steps add up
        per_seller = dict(
            c.query(
                f"SELECT seller_id, sum(sessions) FROM {db}.session_sums WHERE kind = 'furthest' GROUP BY seller_id"
            ).result_rows
        )
        assert per_seller == {s: sum(1 for seller, _ in sessions if seller == s) for s in ("s-one", "s-two")}
        assert_folded_has_every_state(settings)
    finally:
        sink.stop()
    assert not sink.folder._thread.is_alive()  # stopped with the sink


def produce(settings, events) -> None:
    p = Producer(producer_config(settings))
    for e in events:
        p.produce(settings.topic(TOPIC_FOR_TYPE[e.type]), key=e.session_id.encode(), value=encode(e))
    assert p.flush(30) == 0


def store(settings, events, stored: int) -> int:
    """Through Kafka and the real sink (no background fold); returns the events stored so far."""
    sink = EventSink(settings).start()
    try:
        produce(settings, events)
        total = stored + len(events)
        wait_until(
            lambda: (
                get_client(settings)
                .query(f"SELECT count() FROM {settings.clickhouse_database}.events")
                .result_rows[0][0]
                == total
            ),
            60,
            interval=0.2,
            what="all events in ClickHouse",
        )
    finally:
        sink.stop()
    return total


def assert_session_reports_match(settings, events, start, end):
    for seller in ("s-one", "s-two"):
        want = oracle.reports(events, seller, start, end, "UTC")
        for name in ("categories", "offers"):
            assert query.report(settings, name, seller, start, end)["rows"] == want[name]["rows"], name
        got = query.report(settings, "funnel", seller, start, end)["rows"]
        assert [{k: r[k] for k in ("step", "sessions", "abandoned")} for r in got] == want["funnel"]["rows"]


def test_a_database_from_before_the_fold_upgrades_exactly(make_settings):
    settings = make_settings(sink_batch_rows=100, session_fold_interval_s=0)
    c, db = get_client(settings), settings.clickhouse_database
    schema_before(settings, 5)  # as deployed before migration 005: session_facts fed by session_facts_mv
    # background merges could combine a session's partial rows before the upgrade sees them
    c.command(f"SYSTEM STOP MERGES {db}.session_facts")
    start = datetime.now(UTC) - timedelta(days=2)
    events = oracle.generate(5, ("s-one", "s-two"), start, days=2, sessions_per_seller=80)
    stored = store(settings, events, 0)
    ((old_rows, old_sessions),) = c.query(
        f"SELECT count(), uniqExact(seller_id, session) FROM {db}.session_facts"
    ).result_rows
    assert old_rows > old_sessions > 100  # partial rows, not merged yet

    assert migrate(settings)[:1] == ["005_session_sums"]  # and the later ones
    assert migrate(settings) == []
    tables = {r[0] for r in c.query(f"SHOW TABLES FROM {db}").result_rows}
    assert "session_facts" not in tables and "session_facts_mv" not in tables
    assert c.query(f"SELECT uniqExact(seller_id, session) FROM {db}.session_updates").result_rows[0][0] == old_sessions
    end = datetime.now(UTC) + timedelta(hours=1)
    assert_session_reports_match(settings, events, start, end)  # nothing folded yet: all live
    # the old rows are labelled an hour back: the sink's first fold takes them at once
    assert session_fold.fold(settings) == 1
    assert query.folded_to(settings) > 0
    assert_session_reports_match(settings, events, start, end)

    # the upgraded database goes on: late events for old sessions, then folded
    late_events_live_then_folded(settings, events, stored, start, end, seed=6, sessions=10)


def test_the_fold_purges_the_states_of_expired_sessions(make_settings):
    settings = make_settings(sink_batch_rows=100, session_fold_interval_s=0)
    migrate(settings)
    c, db = get_client(settings), settings.clickhouse_database
    start = datetime.now(UTC) - timedelta(days=6)
    events = oracle.generate(7, ("s-one", "s-two"), start, days=6, sessions_per_seller=60)
    store(settings, events, 0)
    assert session_fold.fold(settings, until=past_last_insert(settings)) >= 1
    states = f"SELECT countIf(start_hour < now() - INTERVAL 3 DAY), countIf(start_hour >= now() - INTERVAL 3 DAY) FROM {db}.session_state"
    ((old, recent),) = c.query(states).result_rows
    assert old > 10 and recent > 10
    end = datetime.now(UTC) + timedelta(hours=1)
    before = {s: query.report(settings, "funnel", s, start, end)["rows"] for s in ("s-one", "s-two")}

    assert session_fold.join_marker(settings)[0] == query.folded_to(settings)  # the states in memory in use
    assert_folded_has_every_state(settings)
    assert session_fold.purge_states(settings, older_than_days=3) == old
    assert session_fold.join_marker(settings)[0] == query.folded_to(settings)  # rebuilt without them
    assert c.query(states).result_rows == [(0, recent)]
    assert_folded_has_every_state(settings)
    assert session_fold.purge_states(settings, older_than_days=3) == 0
    # the sums are untouched: the reports still count the purged sessions (until their hours expire)
    assert {s: query.report(settings, "funnel", s, start, end)["rows"] for s in ("s-one", "s-two")} == before

    # the sink's fold thread purges with event_ttl_days when it starts (then once a day)
    folder = session_fold.SessionFolder(
        settings.model_copy(update={"event_ttl_days": 1, "session_fold_interval_s": 60})
    ).start()
    try:
        wait_until(
            lambda: c.query(states.replace("3 DAY", "1 DAY")).result_rows[0][0] == 0,
            30,
            interval=0.2,
            what="states of sessions started over a day ago purged",
        )
        assert c.query(f"SELECT count() FROM {db}.session_state").result_rows[0][0] > 0
    finally:
        folder.stop()


def test_a_database_from_before_the_day_sums_upgrades_exactly(make_settings):
    """Migration 018: a database whose session_sums has hourly rows only and no rollup_pages_daily (as the fold
    and the views left it before) gets its day rows and day table from them, once (a re-run of the
    migration's statements adds nothing), and the reports, which read whole UTC days from them, stay exact
    before and after the next fold."""
    settings = make_settings(sink_batch_rows=100, session_fold_interval_s=0)
    schema_before(settings, 18)
    c, db = get_client(settings), settings.clickhouse_database
    start = datetime.now(UTC) - timedelta(days=3)
    events = oracle.generate(14, ("s-one", "s-two"), start, days=3, sessions_per_seller=80)
    stored = store(settings, events, 0)
    hi = past_last_insert(settings)
    assert session_fold.fold(settings, until=hi) == 1
    # the late events below must be labelled at or after the watermark (test_sessions_folded_before_...)
    wait_until(lambda: c.query("SELECT toUInt32(now())").result_rows[0][0] >= hi, 15, interval=0.2, what="bucket")
    # the fold before 018 wrote no day rows (this tree's fold does: removed, as the old one left the table)
    c.command(f"ALTER TABLE {db}.session_sums DELETE WHERE endsWith(kind, '_day')", settings={"mutations_sync": 2})
    day_rows = f"SELECT count() FROM {db}.session_sums WHERE endsWith(kind, '_day')"
    assert c.query(day_rows).result_rows[0][0] == 0

    assert migrate(settings) == ["018_daily_sums", "019_sink_batches"]
    assert c.query(day_rows).result_rows[0][0] > 50
    end = datetime.now(UTC) + timedelta(hours=1)
    assert_session_reports_match(settings, events, start, end)
    # the migration's statements again (a run that failed before recording it): nothing counted twice
    again = statements(dict((n, sql) for _, n, sql in migration_files())["daily_sums"], settings)
    for stmt in again:
        c.command(stmt)
    assert_session_reports_match(settings, events, start, end)
    # a run that failed part-way through its copies (an INSERT ... SELECT is written in blocks, not at once):
    # one seller's day rows and day page views there, the other's not; run again, everything is there once
    for table in ("session_sums", "rollup_pages_daily"):
        day = "endsWith(kind, '_day') AND " if table == "session_sums" else ""
        c.command(f"ALTER TABLE {db}.{table} DELETE WHERE {day}seller_id = 's-two'", settings={"mutations_sync": 2})
    for stmt in again:
        c.command(stmt)
    assert_session_reports_match(settings, events, start, end)

    # the upgraded database goes on: late events of folded sessions, live, then folded (with day rows)
    late_events_live_then_folded(settings, events, stored, start, end, seed=15, sessions=15)


def test_sessions_folded_before_session_folded_are_found(make_settings):
    # as deployed before migration 011: the fold wrote session_state and session_sums, no session_folded
    settings = make_settings(sink_batch_rows=100, session_fold_interval_s=0)
    schema_before(settings, 11)
    c, db = get_client(settings), settings.clickhouse_database
    start = datetime.now(UTC) - timedelta(days=2)
    events = oracle.generate(4, ("s-one", "s-two"), start, days=2, sessions_per_seller=80)
    stored = store(settings, events, 0)
    lo, hi = query.folded_to(settings), past_last_insert(settings)
    # the late events below must be labelled at or after the watermark: wait for the server's clock
    # to pass it (rows inserted earlier in its bucket would lie behind it, neither folded nor live)
    wait_until(
        lambda: c.query("SELECT toUInt32(now())").result_rows[0][0] >= hi, 15, interval=0.2, what="bucket closed"
    )
    session_fold.compute_changes(settings, lo, hi)  # the old fold's step: its two inserts
    session_fold.write_states(settings, lo, hi)
    session_fold.write_sums(settings, lo, hi)
    assert query.folded_to(settings) == hi
    assert c.query(f"SELECT count() FROM {db}.session_state").result_rows[0][0] > 100

    assert migrate(settings) == [
        "011_session_folded",
        "012_bi_free_text_masked",
        "013_session_items_capped",
        "014_session_folded_join",
        "016_traffic_hours",
        "017_session_live_cache",
        "018_daily_sums",
        "019_sink_batches",
    ]
    assert_folded_has_every_state(settings)
    end = datetime.now(UTC) + timedelta(hours=1)
    # late events of sessions folded before the upgrade: the reports must find their old states (a
    # session missing from session_folded would be counted again as a new one)
    late_events_live_then_folded(settings, events, stored, start, end, seed=8, sessions=15, every_state=True)


def test_the_states_in_memory_are_rebuilt_once_rewritten_copies_pile_up(make_settings, monkeypatch):
    """A Join table keeps every row inserted: each fold step adds a copy of each session it rewrites, which
    only the daily rebuild freed (a busy system: gigabytes a day). A step now rebuilds it once it holds more
    than twice what it held after its last rebuild plus JOIN_SLACK_BYTES."""
    settings = make_settings(sink_batch_rows=100, session_fold_interval_s=0)
    migrate(settings)
    c, db = get_client(settings), settings.clickhouse_database
    start = datetime.now(UTC) - timedelta(days=1)
    store(settings, oracle.generate(8, ("s-one", "s-two"), start, days=1, sessions_per_seller=60), 0)
    assert session_fold.fold(settings, until=past_last_insert(settings)) >= 1
    lo = query.folded_to(settings)
    first = session_fold.rebuild_states_join(settings, lo)  # its base: every entry once
    held, base = session_fold.join_bytes(settings)
    assert session_fold.join_marker(settings) == (lo, first) and 0 < base < held
    # a table this small is mostly the fixed cost of its blocks: the slack is its marker's block
    monkeypatch.setattr(session_fold, "JOIN_SLACK_BYTES", held - base)
    assert session_fold.sync_states_join(settings, lo) == first  # not grown: kept
    # what fold steps rewriting every session leave behind: three more copies of each
    c.command(
        f"INSERT INTO {db}.session_folded_join ({session_fold.FOLDED_COLUMNS}) SELECT {session_fold.FOLDED_COLUMNS} "
        f"FROM {db}.session_folded FINAL, numbers(3) AS n"
    )
    assert session_fold.join_bytes(settings)[0] > 2 * base + held - base
    rebuilt = session_fold.sync_states_join(settings, lo)
    assert rebuilt != first and session_fold.join_marker(settings) == (lo, rebuilt)
    assert session_fold.join_bytes(settings) == (held, base)  # one copy each again
    assert_folded_has_every_state(settings)


def late_events_live_then_folded(settings, events, stored, start, end, seed: int, sessions: int, every_state=False):
    """Late events of ``sessions`` already stored sessions: the reports exact while they are live and once the
    next fold step took them (``every_state``: with a folded state for every session, too)."""
    late = oracle.late_events(seed, events, sessions=sessions)
    events += late
    store(settings, late, stored)
    assert_session_reports_match(settings, events, start, end)
    assert session_fold.fold(settings, until=past_last_insert(settings)) == 1
    if every_state:
        assert_folded_has_every_state(settings)
    assert_session_reports_match(settings, events, start, end)
