"""Traffic-dropped alerts (pure): silence after normal traffic, not for quiet sellers, with a cool-down."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.rates import BUCKETS
from streams.traffic_drop import DropRule, check, sweep

NOW = 1_800_000_000_000
RULE = DropRule(silent_s=900, min_per_minute=2.0, cooldown_s=3600)


def rates(views: list[int]) -> dict:
    assert len(views) == BUCKETS
    return {"series": {"page_views": views}}


def test_fifteen_silent_minutes_after_normal_traffic_alert_once_per_cooldown():
    views = [10] * 44 + [0] * 15 + [0]
    alert = check("shop", rates(views), NOW, RULE, None)
    assert alert["kind"] == "traffic_dropped" and alert["silent_s"] == 900 and alert["baseline_per_minute"] == 10
    assert check("shop", rates(views), NOW + 60_000, RULE, NOW) is None  # cooling down
    again = check("shop", rates(views), NOW + 3_600_000, RULE, NOW)
    assert again is not None and again["alert_id"] != alert["alert_id"]


def test_no_alert_with_any_view_in_the_stretch_or_a_quiet_seller():
    assert check("shop", rates([10] * 44 + [0] * 14 + [1] + [0]), NOW, RULE, None) is None
    assert check("shop", rates([1] * 44 + [0] * 16), NOW, RULE, None) is None  # 1/min normally: silence is normal
    assert check("shop", rates([10] * 45 + [0] * 14 + [5]), NOW, RULE, None) is None  # only 14 silent minutes


@given(views=st.lists(st.integers(0, 50), min_size=BUCKETS, max_size=BUCKETS), last=st.none() | st.integers(0, NOW))
def test_an_alert_only_when_every_whole_minute_of_the_stretch_is_silent(views, last):
    alert = check("shop", rates(views), NOW, RULE, last)
    if alert is not None:
        assert not any(views[-16:-1]) and (last is None or NOW - last >= RULE.cooldown_ms)
        assert sum(views[:-16]) / len(views[:-16]) >= RULE.min_per_minute


def test_the_sweep_alerts_each_dropped_seller_once_and_keeps_the_cooldown():
    series = {"dropped": [10] * 44 + [0] * 16, "busy": [10] * 60, "quiet": [0] * 60}
    last: dict[str, int] = {}
    alerts = sweep(series, lambda s: rates(series[s]), NOW, RULE, last)
    assert [a["seller_id"] for a in alerts] == ["dropped"] and last == {"dropped": NOW}
    assert sweep(series, lambda s: rates(series[s]), NOW + 60_000, RULE, last) == []  # a minute later: cooling down


def test_the_rule_comes_from_settings():
    from livemetrics.settings import Settings

    r = DropRule.from_settings(
        Settings(traffic_drop_silent_s=600, traffic_drop_min_per_minute=5, traffic_drop_cooldown_s=7200)
    )
    assert (r.silent_buckets, r.min_per_minute, r.cooldown_ms) == (10, 5, 7_200_000)
