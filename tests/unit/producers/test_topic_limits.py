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


def test_refusals_asking_for_a_read_all_the_time_get_one_per_min_refresh_s():
    """Batches refused under a limit lowered since the start ask for a read on every refusal: the thread
    reads once, then waits MIN_REFRESH_S, instead of sending describe requests back to back."""
    import threading
    import time

    from producers.gateway import topic_limits

    tl = TopicLimits(Settings(kafka_bootstrap="127.0.0.1:1", topic_prefix="x."))  # no broker: reads fail fast
    reads: list[float] = []

    def counted_refresh(timeout: float = 10.0) -> bool:
        reads.append(time.monotonic())
        return False

    tl.refresh = counted_refresh  # type: ignore[method-assign] - count the reads, not the broker's answers
    tl._thread = threading.Thread(target=tl._run, daemon=True)
    tl._thread.start()
    try:
        until = time.monotonic() + 3.0
        while time.monotonic() < until:  # a refusal every 10 ms
            tl.refresh_soon()
            time.sleep(0.01)  # the pace of the refusals, not a wait for anything
    finally:
        tl.stop()
    assert 1 <= len(reads) <= 1 + int(3.0 // topic_limits.MIN_REFRESH_S), reads
