"""Arrivals: the configured rate, the daily rhythm, a warm start, and backfill history."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.simulate.catalog import SELLERS, daily_rhythm
from producers.simulate.traffic import HOUR_MS, LiveTraffic, backfill_plan, poisson

T0 = 1_767_268_800_000  # 2026-01-01 12:00 UTC


def flat(_hour: float) -> float:
    return 1.0


def test_rhythm_averages_one_with_a_quiet_night_and_an_evening_peak():
    mean = sum(daily_rhythm(h + 0.5) for h in range(24)) / 24
    assert mean == pytest.approx(1.0, rel=0.02)
    assert daily_rhythm(4) < 0.3 < 1.5 < daily_rhythm(20)


@given(st.floats(0, 48))
def test_rhythm_is_positive_and_continuous(h):
    assert daily_rhythm(h) > 0
    assert abs(daily_rhythm(h) - daily_rhythm(h + 0.01)) < 0.05


@pytest.mark.parametrize("rate", [5.0, 40.0])
def test_live_events_per_second_match_the_rate_from_the_start(rate):
    traffic = LiveTraffic(rate, T0, seed=11, rhythm=flat)
    sent = 0
    for step in range(1, 601):  # ten minutes in 1 s steps
        sent += len(traffic.due(T0 + step * 1000))
    assert sent / 600 == pytest.approx(rate, rel=0.25)


def test_the_rate_follows_the_daily_rhythm_over_hours():
    start = T0 - 8 * HOUR_MS  # 04:00 UTC, the quietest hour
    traffic = LiveTraffic(10, start, seed=12, utc_offset_h=0)
    assert traffic.session_rate_per_s(start + 16 * HOUR_MS) > 5 * traffic.session_rate_per_s(start)


def test_due_returns_events_in_time_order_and_never_early():
    traffic = LiveTraffic(30, T0, seed=13, rhythm=flat)
    last = 0
    for step in range(1, 120):
        now = T0 + step * 500
        for _, e in traffic.due(now):
            assert e.at_ms <= now and e.at_ms >= last
            last = e.at_ms


def test_rate_zero_sends_only_bursts():
    traffic = LiveTraffic(0, T0, seed=14)
    assert traffic.due(T0 + 60_000) == []
    traffic.add_burst(T0 + 60_000, 5)
    due = traffic.due(T0 + 70_000)
    assert sum(e.body["type"] == "payment_failed" for _, e in due) == 5


def test_backfill_spans_the_days_before_the_end_with_a_rhythm():
    end = T0
    events = list(backfill_plan(2, end, sessions_per_day=600, seed=15))
    times = [e.at_ms for _, e in events]
    assert max(times) < end and min(times) >= end - 2 * 24 * HOUR_MS - HOUR_MS
    assert {sid for sid, _ in events} == {s.seller_id for s in SELLERS}
    by_hour = [0] * 24
    for _, e in events:
        if e.body["type"] == "page_view":
            by_hour[(e.at_ms // HOUR_MS) % 24] += 1
    assert by_hour[19] > 3 * by_hour[3]  # evening vs night (UTC+1 sellers dominate)


@given(st.floats(0.1, 200))
def test_poisson_mean(lam):
    rng = random.Random(int(lam * 1000))
    n = 400
    mean = sum(poisson(rng, lam) for _ in range(n)) / n
    assert abs(mean - lam) < 5 * (lam / n) ** 0.5 + 0.05
