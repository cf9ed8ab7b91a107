"""The hourly report over several weeks around DST changes: each cell (weekday, hour of day in the zone)
then holds several UTC hours, and across a change they are different UTC hours of the day. The oracle
test (test_reports_oracle.py) spans four days, where every cell holds one hour: a form of hourly.sql that
merged a cell's hours wrongly would pass it. One such form was tried (BENCHMARKS.md, fifteenth session:
the day read in two halves, each its own grouping; split by the UTC hour instead of the zone's, a cell's
hours fell in both halves and it came out as two rows): this test fails on it, the oracle test does not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from clickhouse import query, traffic_fold
from clickhouse.client import INSERT_SETTINGS, get_client
from clickhouse.migrate import migrate
from livemetrics.contract import encode
from livemetrics.settings import Settings
from operations.bench.events_arrow import decode_events, events_table
from tests.support import oracle

pytestmark = pytest.mark.integration
SELLER = "s-weeks"
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC")


@pytest.fixture(scope="module")
def weeks(clickhouse_dsn, tmp_path_factory):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("hourly-weeks"),
        clickhouse_dsn=clickhouse_dsn,
        clickhouse_database=f"lm_{uuid.uuid4().hex[:10]}",
    )
    migrate(settings)
    c, db = get_client(settings), settings.clickhouse_database
    # partial states in several parts: the report merges an hour's states as well as a cell's hours
    c.command(f"SYSTEM STOP MERGES {db}.rollup_traffic_hourly")
    now = datetime.now(UTC)
    changes = [oracle.dst_transition_before(now, tz) for tz in ("Europe/Berlin", "America/New_York")]
    start = min(changes) - timedelta(days=9)
    end = max(changes) + timedelta(days=9)
    days = (end - start).days
    events = oracle.generate(5, (SELLER,), start, days=days, sessions_per_seller=days * 24 * 2)
    for i in range(4):
        part = events[i::4]
        table = events_table(
            decode_events([encode(e) for e in part])[0], ["t"] * len(part), [0] * len(part), list(range(len(part)))
        )
        c.insert_arrow(f"{db}.events", table, settings={**INSERT_SETTINGS, "insert_deduplicate": 0})
    return settings, events, start, end


@pytest.mark.parametrize("tz", ZONES)
def test_hourly_over_weeks_matches_the_oracle(weeks, tz):
    settings, events, start, end = weeks
    begin = start + timedelta(minutes=20)  # not on a whole hour: the hour of `from` counts
    want = oracle.reports(events, SELLER, begin, end, tz)["hourly"]["rows"]
    assert len(want) == 168  # every cell of the week
    assert max(r["sessions"] for r in want) > 1
    assert query.report(settings, "hourly", SELLER, begin, end, tz)["rows"] == want


def test_hourly_over_weeks_with_the_hours_folded_matches_the_oracle(weeks):
    """The same with every hour folded (clickhouse/traffic_fold.py): cells whose sessions are the sum of
    their hours' counts and, across the changes, cells whose hours' offsets differ; the fall-back's
    repeated hour (two hours of one day in one cell) merges states."""
    settings, events, start, end = weeks
    assert traffic_fold.fold_hours(settings, since=0) > 24 * 14
    begin = start + timedelta(minutes=20)
    p = {"seller_id": SELLER, "from_ms": query.epoch_ms(begin), "to_ms": query.epoch_ms(end)}
    for tz in ZONES:
        want = oracle.reports(events, SELLER, begin, end, tz)["hourly"]["rows"]
        assert query.report(settings, "hourly", SELLER, begin, end, tz)["rows"] == want
        summed = [r for r in query.run(settings, "hourly", tz=tz, **p) if not r["merge_hours"]]
        assert len(summed) > 100
