"""A report's range is bounded (LIVEMETRICS_REPORT_MAX_DAYS): one query must not scan all history."""

from datetime import timedelta

import pytest
from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st

from api.routes.reports import parse_range


def test_a_range_over_the_limit_is_422_naming_the_setting():
    with pytest.raises(HTTPException) as exc:
        parse_range("2025-01-01", "2026-02-06", max_days=400)
    assert exc.value.status_code == 422
    assert exc.value.detail == (
        "the range from `from` to `to` is 401.0 days; at most 400 days (LIVEMETRICS_REPORT_MAX_DAYS) per report"
    )
    start, end = parse_range("2025-01-01", "2026-02-05", max_days=400)
    assert end - start == timedelta(days=400)


@given(days=st.floats(0.001, 1000), max_days=st.integers(1, 500))
def test_accepted_exactly_up_to_the_limit(days, max_days):
    to = "2026-06-01T00:00:00+00:00"
    from_ = (parse_range(None, to, 1000)[1] - timedelta(days=days)).isoformat()
    if timedelta(days=days) > timedelta(days=max_days):
        with pytest.raises(HTTPException):
            parse_range(from_, to, max_days)
    else:
        start, end = parse_range(from_, to, max_days)
        assert end - start <= timedelta(days=max_days)


def test_the_default_range_fits_a_small_limit():
    start, end = parse_range(None, "2026-06-01", max_days=3)
    assert end - start == timedelta(days=3)
