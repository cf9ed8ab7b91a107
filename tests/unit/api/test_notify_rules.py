"""Per-channel alert rules (pure): kinds, minimum amount, quiet hours across midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.notify.rules import RuleError, Rules, check, quiet_until, wants

FAIL = {"kind": "payment_failed", "order": {"amount": "19.99", "currency": "EUR"}}
SPIKE = {"kind": "error_spike"}


def test_kinds_and_minimum_amount():
    assert wants(None, FAIL) and wants(Rules(), SPIKE)
    assert not wants(Rules(kinds=["error_spike"]), FAIL) and wants(Rules(kinds=["error_spike"]), SPIKE)
    assert not wants(Rules(min_amount="20"), FAIL) and wants(Rules(min_amount="19.99"), FAIL)
    assert wants(Rules(min_amount="20"), SPIKE)  # the minimum is for payment failures only
    assert wants(Rules(min_amount="20"), {"kind": "payment_failed", "order": {}})  # unknown amount: sent


@pytest.mark.parametrize(
    "rules, field",
    [
        (Rules(kinds=["payment_failed", "nope"]), "kinds"),
        (Rules(min_amount="ten"), "min_amount"),
        (Rules(min_amount="-1"), "min_amount"),
        (Rules(quiet_start="22:00"), "quiet_start and quiet_end"),
        (Rules(quiet_start="24:00", quiet_end="07:00"), "quiet_start"),
        (Rules(quiet_start="7:00", quiet_end="08:00"), "quiet_start"),
        (Rules(quiet_start="08:00", quiet_end="08:00"), "same time"),
        (Rules(tz="Mars/Olympus"), "tz"),
    ],
)
def test_bad_rules_name_the_field(rules, field):
    with pytest.raises(RuleError, match=field):
        check(rules)


def test_quiet_hours_across_midnight_in_the_sellers_zone():
    r = check(Rules(quiet_start="22:00", quiet_end="07:00", tz="Europe/Berlin"))  # UTC+1 in January
    utc = UTC
    assert quiet_until(r, datetime(2026, 1, 10, 20, 59, tzinfo=utc)) is None  # 21:59 Berlin
    assert quiet_until(r, datetime(2026, 1, 10, 21, 0, tzinfo=utc)) == datetime(2026, 1, 11, 6, 0, tzinfo=utc)
    assert quiet_until(r, datetime(2026, 1, 11, 5, 30, tzinfo=utc)) == datetime(2026, 1, 11, 6, 0, tzinfo=utc)
    assert quiet_until(r, datetime(2026, 1, 11, 6, 0, tzinfo=utc)) is None  # 07:00 Berlin: over
    # The night the clocks go forward (29 March 2026): 07:00 Berlin is 05:00 UTC.
    assert quiet_until(r, datetime(2026, 3, 28, 23, 0, tzinfo=utc)) == datetime(2026, 3, 29, 5, 0, tzinfo=utc)


def test_daytime_quiet_hours():
    r = check(Rules(quiet_start="12:00", quiet_end="13:30", tz="UTC"))
    assert quiet_until(r, datetime(2026, 5, 1, 12, 15, tzinfo=UTC)) == datetime(2026, 5, 1, 13, 30, tzinfo=UTC)
    assert quiet_until(r, datetime(2026, 5, 1, 13, 30, tzinfo=UTC)) is None


@given(
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    start=st.integers(0, 1439),
    end=st.integers(0, 1439),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
)
def test_a_quiet_end_is_after_now_within_a_day_and_outside_the_window(now, start, end, tz):
    if start == end:
        return
    r = check(
        Rules(quiet_start=f"{start // 60:02d}:{start % 60:02d}", quiet_end=f"{end // 60:02d}:{end % 60:02d}", tz=tz)
    )
    now = now.replace(tzinfo=UTC)
    until = quiet_until(r, now)
    if until is not None:
        assert now < until <= now + timedelta(hours=25)
        assert quiet_until(r, until) is None


@pytest.mark.parametrize("tz", ["Europe", "America", "Etc", "right/UTC", "posixrules", "a" * 300])
def test_a_time_zone_that_is_no_iana_name_is_a_rule_error(tz):
    """ZoneInfo("Europe") raises IsADirectoryError (a tzdata folder), which check() did not catch: PUT .../rules
    with it answered 500 to any seller token. Now only the names zoneinfo.available_timezones() lists pass."""
    with pytest.raises(RuleError, match="unknown time zone"):
        check(Rules(quiet_start="22:00", quiet_end="07:00", tz=tz))
