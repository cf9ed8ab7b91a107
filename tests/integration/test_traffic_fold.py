"""The hourly report with its hours folded (clickhouse/traffic_fold.py, migration 016): a cell's sessions are
the sum of its hours' folded counts only where that equals merging their `uniq` states, and the states are
merged everywhere else. Each case below is one where a plain sum would count a session twice or a count
would be out of date: a session in both hours of a DST fall-back's repeated hour, one session id a week
apart in the same cell, page views arriving for hours already folded; and a database from before 016."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from clickhouse import query, session_fold, traffic_fold
from clickhouse.client import INSERT_SETTINGS, get_client
from clickhouse.migrate import migrate
from livemetrics.contract import Event, Page, encode
from livemetrics.settings import Settings
from operations.bench.events_arrow import decode_events, events_table
from tests.support import oracle
from tests.support.old_schema import schema_before

pytestmark = pytest.mark.integration
SELLER = "s-hours"


@pytest.fixture
def settings(clickhouse_dsn, tmp_path):
    return Settings(data_dir=tmp_path, clickhouse_dsn=clickhouse_dsn, clickhouse_database=f"lm_{uuid.uuid4().hex[:10]}")


def put(settings: Settings, events: list[Event]) -> None:
    table = events_table(
        decode_events([encode(e) for e in events])[0], ["t"] * len(events), [0] * len(events), list(range(len(events)))
    )
    get_client(settings).insert_arrow(
        f"{settings.clickhouse_database}.events", table, settings={**INSERT_SETTINGS, "insert_deduplicate": 0}
    )


def view(session: str, at: datetime) -> Event:
    ms = int(at.timestamp() * 1000)
    return Event(
        event_id=str(uuid.uuid4()),
        type="page_view",
        seller_id=SELLER,
        session_id=session,
        ts=ms,
        received_at=ms,
        browser="Chrome",
        page=Page(type="home", path="/"),
    )


def merged_cells(settings: Settings, start: datetime, end: datetime, tz: str) -> int:
    """How many cells the report merges states for (the others add up folded counts)."""
    p = {"seller_id": SELLER, "from_ms": query.epoch_ms(start), "to_ms": query.epoch_ms(end), "tz": tz}
    return sum(1 for r in query.run(settings, "hourly", **p) if r["merge_hours"])


def assert_hourly(settings: Settings, events: list[Event], start: datetime, end: datetime, tz: str) -> list[dict]:
    got = query.report(settings, "hourly", SELLER, start, end, tz)["rows"]
    assert got == oracle.reports(events, SELLER, start, end, tz)["hourly"]["rows"]
    return got


def cell(rows: list[dict], weekday: int, hour: int) -> dict:
    (r,) = [r for r in rows if (r["weekday"], r["hour"]) == (weekday, hour)]
    return r


def generated(settings: Settings, seed: int, days: int, per_hour: int) -> tuple[list[Event], datetime, datetime]:
    """The oracle's events of ``days`` days, ``per_hour`` sessions an hour, from ``days`` + 1 days ago, put
    into a migrated database; with the range of the reports (to the next day's start of this hour)."""
    migrate(settings)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days + 1)
    events = oracle.generate(seed, (SELLER,), start, days=days, sessions_per_seller=days * 24 * per_hour)
    put(settings, events)
    return events, start, start + timedelta(days=days + 1)


def test_folded_weeks_are_summed_and_match_the_oracle(settings):
    events, start, end = generated(settings, seed=11, days=19, per_hour=3)
    assert traffic_fold.fold_hours(settings, since=0) > 400
    assert traffic_fold.fold_hours(settings, since=0) == 0  # all folded as they are
    for tz in ("Europe/Berlin", "America/New_York", "Asia/Kolkata"):
        rows = assert_hourly(settings, events, start, end, tz)
        assert len(rows) == 168 and max(r["sessions"] for r in rows) > 3
        # the folded counts are what is used (a cell merges states only where they could differ)
        assert merged_cells(settings, start, end, tz) <= 10


def test_a_session_in_both_hours_of_a_dst_fall_back_counts_once(settings):
    migrate(settings)
    # Europe/Berlin, 2026-10-25: 02:00-03:00 local twice, 00:00-01:00 UTC (CEST) and 01:00-02:00 UTC (CET)
    first, second = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    events = [
        view("both-hours", first),
        view("both-hours", second),
        view("first-only", first),
        view("second-only", second),
    ]
    events += [view(f"other-{h}", first + timedelta(hours=h)) for h in range(-20, 30, 3) if h not in (0, 1)]
    put(settings, events)
    start, end = datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC)
    assert traffic_fold.fold_hours(settings, since=0) > 10
    rows = assert_hourly(settings, events, start, end, "Europe/Berlin")
    assert cell(rows, 7, 2)["sessions"] == 3  # a sum of the two hours' counts would say 4
    assert merged_cells(settings, start, end, "Europe/Berlin") == 1  # that cell only
    assert_hourly(settings, events, start, end, "UTC")  # one hour a cell there
    assert merged_cells(settings, start, end, "UTC") == 0


@pytest.mark.parametrize(("weeks", "rounds"), [(1, 1), (1, 2), (6, 1)])
def test_one_session_id_weeks_apart_counts_once_in_its_cell(settings, weeks, rounds):
    migrate(settings)
    monday = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=7 * weeks + 14)
    monday -= timedelta(days=monday.weekday())
    later = monday + timedelta(days=7 * weeks)
    events = [view("again", monday + timedelta(minutes=5)), view("again", later + timedelta(minutes=50))]
    events += [view(f"w1-{i}", monday + timedelta(minutes=i)) for i in range(5)]
    events += [view(f"w2-{i}", later + timedelta(minutes=i)) for i in range(4)]
    start, end = monday - timedelta(days=1), later + timedelta(days=2)
    if rounds == 1:
        put(settings, events)
        traffic_fold.fold_hours(settings, since=0)
    else:  # the first week folded before the second one's events came: the later hour finds the earlier
        put(settings, events[:1] + events[2:7])
        traffic_fold.fold_hours(settings, since=0)
        put(settings, events[1:2] + events[7:])
        traffic_fold.fold_hours(settings, since=0)
    rows = assert_hourly(settings, events, start, end, "UTC")
    assert cell(rows, 1, 10)["sessions"] == 10  # 6 + 5 hours' counts, "again" in both
    # the fold compares hours up to 5 weeks apart; 6 weeks apart the cell's span alone says to merge
    assert merged_cells(settings, start, end, "UTC") == 1


def test_page_views_for_folded_hours_are_counted_before_and_after_the_next_fold(settings):
    events, start, end = generated(settings, seed=12, days=15, per_hour=2)
    traffic_fold.fold_hours(settings, since=0)
    assert merged_cells(settings, start, end, "Europe/Berlin") <= 10
    views = [e for e in events if e.type == "page_view" and not e.is_bot]
    late = []
    for e in views[:: len(views) // 12]:  # a dozen folded hours get late page views
        at = datetime.fromtimestamp(e.ts / 1000, UTC)
        late.append(view(e.session_id, at))  # a session the hour already counted
        late.append(view(f"late-{len(late)}", at))  # a new one
        # and a session of the hour a week later (the same cell): the two hours now share it
        later = [
            x
            for x in views
            if timedelta(days=7) <= datetime.fromtimestamp(x.ts / 1000, UTC) - at < timedelta(days=7, minutes=30)
        ]
        if later:
            late.append(view(later[0].session_id, at))
    put(settings, late)
    events += late
    rows = assert_hourly(settings, events, start, end, "Europe/Berlin")  # the late hours' cells merge states
    assert merged_cells(settings, start, end, "Europe/Berlin") >= 10
    assert traffic_fold.fold_hours(settings, since=0) >= 12
    assert assert_hourly(settings, events, start, end, "Europe/Berlin") == rows
    assert_hourly(settings, events, start, end, "America/New_York")


def test_a_database_from_before_016_gets_its_hours_folded(settings):
    schema_before(settings, 16)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=15)
    events = oracle.generate(13, (SELLER, "s-other"), start, days=14, sessions_per_seller=14 * 24)
    put(settings, events)
    assert migrate(settings) == ["016_traffic_hours", "017_session_live_cache", "018_daily_sums", "019_sink_batches"]
    end = start + timedelta(days=15)
    rows = assert_hourly(settings, events, start, end, "Europe/Berlin")  # nothing folded: all merged
    assert merged_cells(settings, start, end, "Europe/Berlin") == len(rows)
    session_fold.fold(settings)  # the sink's fold thread's first round
    c, db = get_client(settings), settings.clickhouse_database
    ((folded, hours),) = c.query(
        f"SELECT (SELECT count() FROM {db}.traffic_hours), "
        f"(SELECT uniqExact(seller_id, hour) FROM {db}.rollup_traffic_hourly WHERE hour < toStartOfHour(now()))"
    ).result_rows
    assert folded == hours > 300
    assert assert_hourly(settings, events, start, end, "Europe/Berlin") == rows
    assert merged_cells(settings, start, end, "Europe/Berlin") <= 10


def test_an_hour_live_events_can_still_reach_is_refolded_only_once_they_cannot(settings):
    migrate(settings)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    events = [view(f"s-{i}", hour + timedelta(minutes=i)) for i in range(6)]
    events += [view(f"w-{i}", hour - timedelta(days=7, minutes=-i)) for i in range(3)]
    put(settings, events)
    start, end = hour - timedelta(days=8), hour + timedelta(hours=1)
    assert traffic_fold.fold_hours(settings, since=0) == 2  # both hours, once ended
    late = [view("s-0", hour + timedelta(minutes=40)), view("new", hour + timedelta(minutes=41))]
    put(settings, late)
    events += late
    # within max_clock_skew_s (+ the margin) of now: not refolded, its cell merges states meanwhile
    assert traffic_fold.fold_hours(settings, since=0) == 0
    assert cell(assert_hourly(settings, events, start, end, "UTC"), hour.isoweekday(), hour.hour)["sessions"] == 10
    assert merged_cells(settings, start, end, "UTC") == 1
    settled = settings.model_copy(update={"max_clock_skew_s": 1800})
    assert traffic_fold.fold_hours(settled, since=0) == 1
    assert_hourly(settings, events, start, end, "UTC")
    assert merged_cells(settings, start, end, "UTC") == 0
