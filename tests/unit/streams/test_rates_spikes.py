"""Per-minute rates and error-spike detection (pure), against counts written here from the docs."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.contract import Event, Page, Payment
from streams import rates, spikes

NOW = 1_700_000_000_000 // 60_000 * 60_000 + 30_000  # half way through a minute
START = rates.first_bucket(NOW)


def ev(type_: str, at: int, method: str = "card", bot=False, backfill=False) -> Event:
    e = Event(
        event_id=str(uuid.uuid4()),
        type=type_,
        seller_id="s",
        session_id="sess-0001",
        ts=at,
        received_at=at,
        is_bot=bot,
        backfill=backfill,
    )
    if type_ == "page_view":
        e.page = Page(type="home")
    if type_.startswith("payment_"):
        e.payment = Payment(method=method, amount=1.0, currency="EUR", order_id="o")
    return e


def test_window_edges_and_shape():
    assert START == NOW // 60_000 * 60_000 - 59 * 60_000
    b: dict = {}
    rates.count(b, ev("page_view", START - 1), NOW)  # one ms before the hour shown: not kept
    rates.count(b, ev("page_view", START), NOW)  # first ms of the oldest bucket
    rates.count(b, ev("page_view", NOW), NOW)  # the current (partial) minute
    rates.count(b, ev("heartbeat", NOW), NOW)  # heartbeats are not page views
    rates.count(b, ev("page_view", NOW, bot=True), NOW)
    rates.count(b, ev("page_view", NOW, backfill=True), NOW)
    rates.count(b, ev("payment_failed", NOW - 60_000, method="paypal"), NOW)
    out = rates.series(b, NOW)
    assert out["bucket_s"] == 60 and out["buckets"] == 60 and out["start_ms"] == START
    assert set(out["series"]) == set(rates.SERIES) and all(len(v) == 60 for v in out["series"].values())
    assert out["series"]["page_views"][0] == 1 and out["series"]["page_views"][-1] == 1
    assert sum(out["series"]["page_views"]) == 2
    assert out["series"]["payments_failed"][-2] == 1
    assert out["by_method"] == {"paypal": {"started": [0] * 60, "succeeded": [0] * 60, "failed": [0] * 58 + [1, 0]}}
    # A minute later the arrays move one step to the left and the oldest bucket falls out.
    later = rates.series(rates.prune(b, NOW + 60_000), NOW + 60_000)
    assert later["start_ms"] == START + 60_000
    assert later["series"]["page_views"][-2] == 1 and sum(later["series"]["page_views"]) == 1


types = st.sampled_from(
    ["page_view", "heartbeat", "checkout_started", "payment_started", "payment_succeeded", "payment_failed"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(types, st.integers(-3_700_000, 0), st.sampled_from(["card", "wallet"]), st.booleans()), max_size=60
    ),
    st.integers(1, 3),
)
def test_series_equals_a_recount_whatever_the_split_into_rows(items, parts):
    """Counting into several rows (partitions) and merging equals counting everything at once, and each
    series element is the number of events of its kind in its minute."""
    rows: list[dict] = [{} for _ in range(parts)]
    for i, (t, off, m, bot) in enumerate(items):
        rates.count(rows[i % parts], ev(t, NOW + off, m, bot=bot), NOW)
    merged: dict = {}
    for r in rows:
        rates.merge(merged, rates.prune(r, NOW))
    out = rates.series(merged, NOW)
    names = {
        "page_view": "page_views",
        "checkout_started": "checkouts",
        "payment_started": "payments_started",
        "payment_succeeded": "payments_succeeded",
        "payment_failed": "payments_failed",
    }
    for i in range(60):
        lo = START + i * 60_000
        for t, name in names.items():
            want = sum(1 for tt, off, _, bot in items if tt == t and not bot and lo <= NOW + off < lo + 60_000)
            assert out["series"][name][i] == want
        for m, per in out["by_method"].items():
            want = sum(
                1
                for tt, off, mm, bot in items
                if tt == "payment_failed" and mm == m and not bot and lo <= NOW + off < lo + 60_000
            )
            assert per["failed"][i] == want


def series_with(failed_now: int, ok_now: int, failed_before: int, ok_before: int) -> dict:
    b: dict = {}
    for _ in range(failed_now):
        rates.count(b, ev("payment_failed", NOW), NOW)
    for _ in range(ok_now):
        rates.count(b, ev("payment_succeeded", NOW), NOW)
    for _ in range(failed_before):
        rates.count(b, ev("payment_failed", NOW - 30 * 60_000), NOW)
    for _ in range(ok_before):
        rates.count(b, ev("payment_succeeded", NOW - 30 * 60_000), NOW)
    return rates.series(b, NOW)


RULE = spikes.SpikeRule(window_s=300, ratio=3.0, min_failures=5, min_rate=0.2, cooldown_s=900)


def test_spike_fires_when_the_short_window_is_far_above_the_hour():
    alert = spikes.check("s", series_with(6, 4, 2, 98), NOW, RULE, None)
    assert alert is not None and alert["kind"] == "error_spike" and alert["seller_id"] == "s"
    assert alert["failures"] == 6 and alert["succeeded"] == 4 and alert["failure_rate"] == 0.6
    assert alert["baseline_failures"] == 2 and alert["baseline_succeeded"] == 98
    assert alert["window_s"] == 300 and alert["baseline_s"] == 3300
    assert alert["alert_id"] == f"error_spike:s:{NOW // 900_000}"


def test_no_spike_below_each_threshold():
    assert spikes.check("s", series_with(4, 0, 0, 100), NOW, RULE, None) is None  # too few failures
    assert spikes.check("s", series_with(5, 30, 0, 100), NOW, RULE, None) is None  # rate below min_rate
    assert spikes.check("s", series_with(6, 4, 50, 50), NOW, RULE, None) is None  # not 3x the baseline
    assert spikes.check("s", series_with(5, 0, 0, 0), NOW, RULE, None) is not None  # no baseline: any rate is a spike


def test_cool_down():
    s = series_with(6, 4, 0, 100)
    assert spikes.check("s", s, NOW, RULE, NOW - 899_999) is None
    assert spikes.check("s", s, NOW, RULE, NOW - 900_000) is not None
