"""A session's state stays bounded whatever a storefront sends (docs/ingest.md): failed payments kept per
session are capped at ``MAX_FAILURES``, the latest by (received_at, event_id), so a session counts
exactly min(MAX_FAILURES, its failures in the window), in any delivery order, with redeliveries."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.contract import Event, Payment
from streams import state as sm

W = sm.Windows(live_ms=300_000, timeout_ms=1_800_000, recent_ms=1_800_000)
T0 = 1_735_732_800_000


def failed(i: int, at: int) -> Event:
    return Event(
        event_id=f"{i:08d}-fail",
        type="payment_failed",
        seller_id="s",
        session_id="sess-0001",
        ts=at,
        received_at=at,
        payment=Payment(method="card", amount=1.0, currency="EUR", order_id="o", error_code="card_declined"),
    )


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(sm.MAX_FAILURES - 3, sm.MAX_FAILURES + 60),
    seed=st.integers(0, 2**32),
    late_ms=st.integers(0, 900_000),
)
def test_failures_per_session_are_capped_and_counted_exactly(n, seed, late_ms):
    rng = random.Random(seed)
    events = [failed(i, T0 + rng.randrange(0, 600_000)) for i in range(n)]
    delivered = events + rng.sample(events, min(50, n))  # redeliveries, in any order
    rng.shuffle(delivered)
    st_ = None
    now = T0 + 600_000
    for ev in delivered:
        st_, _ = sm.apply_event(st_, ev, now, W)
        assert len(st_.failures) <= sm.MAX_FAILURES
    assert st_.emitted["failures"] == min(n, sm.MAX_FAILURES)
    # Later, some failures have left the window: the count is still min(cap, failures in the window).
    later = now + W.recent_ms - 600_000 + late_ms
    st_, _ = sm.advance(st_, later, W)
    in_window = sum(1 for e in events if later - e.received_at < W.recent_ms)
    assert st_.emitted.get("failures", 0) == min(in_window, sm.MAX_FAILURES)
    assert len(sm.dumps(st_)) < 100_000
