"""The arithmetic of ``topic_limits``: what fits a topic's max.message.bytes, and what is reported."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from livemetrics.settings import Settings
from producers.gateway.topic_limits import FRAMING_BYTES, REQUIRED_BYTES, TopicLimits, batch_bytes, value_cap


@given(st.integers(min_value=0, max_value=10_000_000))
def test_value_cap_is_the_largest_value_whose_batch_fits(limit):
    v = value_cap(limit)
    assert v == 0 or batch_bytes(v) <= limit
    assert batch_bytes(v + 1) > limit


def test_a_topic_under_the_largest_event_is_a_problem_naming_it_and_both_limits():
    tl = TopicLimits(Settings(topic_prefix="x."))
    tl.set({"x.page-events": 1_048_588, "x.checkout-events": 20_000})
    [problem] = tl.problems
    assert "x.checkout-events" in problem and "20000" in problem and str(REQUIRED_BYTES) in problem
    assert tl.batch_size() == 20_000 - FRAMING_BYTES  # small events never batched past the smallest limit
    tl.set({"x.page-events": 1_048_588, "x.checkout-events": REQUIRED_BYTES})
    assert tl.problems == []
    assert TopicLimits(Settings()).batch_size() == 1_000_000  # none read: librdkafka's default


def test_an_incompressible_value_over_the_cap_is_refused_and_a_compressible_one_is_not():
    import os

    tl = TopicLimits(Settings(topic_prefix="x."))
    tl.set({"x.checkout-events": 20_000})
    assert tl.refusal("x.checkout-events", os.urandom(25_000)) is not None
    assert tl.refusal("x.checkout-events", b"n" * 25_000) is None
    assert tl.refusal("x.unknown", os.urandom(25_000)) is None
