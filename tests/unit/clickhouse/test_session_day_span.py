"""session_reports.day_span: the whole UTC days a session report reads from the day sums (migration 018) and
the hours at its range's ends it reads from the hourly ones together count every hour of the range once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clickhouse.session_reports import day_span

HOUR, DAY = 3600, 86_400
_2030_MS = 1_893_456_000_000


def hours_counted(from_ms: int, to_ms: int) -> set[int]:
    """What popular.sql counted before the day sums: the hours from the start's hour, starting before the end."""
    first = from_ms // 3_600_000 * HOUR
    return {h for h in range(first, to_ms // 1000 + HOUR, HOUR) if h * 1000 < to_ms}


def hours_read(from_ms: int, to_ms: int) -> list[int]:
    """The hours popular.sql reads now: by hour before days_from and from days_to on, by day between."""
    days_from, days_to = day_span(from_ms, to_ms)
    first = from_ms // 3_600_000 * HOUR
    by_hour = [
        h for h in range(first, to_ms // 1000 + HOUR, HOUR) if h < days_from or days_to <= h and h * 1000 < to_ms
    ]
    by_day = [d + i * HOUR for d in range(days_from, days_to, DAY) for i in range(24)]
    assert days_from % DAY == 0 and days_to % DAY == 0 or days_from == days_to
    return by_hour + by_day


@given(st.integers(0, 60 * DAY * 1000), st.integers(1, 40 * DAY * 1000))
def test_every_hour_of_the_range_is_read_once(offset_ms, length_ms):
    from_ms = _2030_MS + offset_ms
    to_ms = from_ms + length_ms
    read = hours_read(from_ms, to_ms)
    assert sorted(read) == sorted(hours_counted(from_ms, to_ms))
    assert len(read) == len(set(read))


def test_whole_days_are_taken_where_the_range_holds_them():
    midnight = _2030_MS  # 2030-01-01 00:00 UTC
    assert day_span(midnight, midnight + 3 * DAY * 1000) == (midnight // 1000, midnight // 1000 + 3 * DAY)
    # a range from 07:20 for 3 days 2 h: the hours of the first day's end and the last day's start by hour
    begin = midnight + (7 * HOUR + 20 * 60) * 1000
    assert day_span(begin, begin + (3 * DAY + 2 * HOUR) * 1000) == (midnight // 1000 + DAY, midnight // 1000 + 3 * DAY)
    # an end in the middle of an hour counts that hour: a day ending in it is whole
    assert day_span(midnight, midnight + DAY * 1000 - 1) == (midnight // 1000, midnight // 1000 + DAY)
    # no whole day (a 23 h range, or one across midnight): every hour by hour
    end = midnight + 23 * HOUR * 1000
    assert day_span(midnight, end) == (end // 1000, end // 1000)
    assert day_span(begin, begin + DAY * 1000) == ((begin // 1000 + DAY) // HOUR * HOUR + HOUR,) * 2
