"""Regression: an epoch-ms `ts` has 13 digits and passes Luhn one time in ten; it is never card data."""

from hypothesis import given
from hypothesis import strategies as st

from livemetrics.contract import EventIn
from livemetrics.validation import parse_event
from tests.support import factories as f


@given(st.integers(min_value=1_000_000_000_000, max_value=9_999_999_999_999))
def test_any_epoch_ms_timestamp_is_accepted(ts):
    import json

    assert isinstance(parse_event(json.dumps(f.page_view(ts=ts)).encode(), 0), EventIn)


def test_the_same_digits_elsewhere_are_still_card_data():
    import json

    ev = f.page_view()
    ev["page"]["path"] = "/pay?n=4111111111111111"
    assert parse_event(json.dumps(ev).encode(), 0).reason == "card_data"
