"""``streams/produce_guard.py``: the largest sums row, report and snapshot the caps allow stay under the
bound the worker checks at start; caps that cannot fit are refused with the numbers; a message over the
limit is logged, counted and skipped, never raised."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest

from livemetrics.settings import Settings
from livemetrics.snapshot import build_snapshot
from streams import produce_guard, rates, worker_metrics
from streams.caps import METHOD_STEPS, OTHER, Caps
from streams.state import Windows

BIG = 10**15  # counts far above anything real, so the numbers take their room too


def largest_row(caps: Caps, s: Settings) -> dict:
    """A sums row with every capped dimension full of the longest names the contract allows."""
    v = {f"live:category:{i:0100d}": BIG for i in range(caps.category)}
    v |= {f"live:offer:{i:0100d}": BIG for i in range(caps.offer)}
    v |= {
        k: BIG
        for k in (
            "live:home",
            "live:product",
            "live:cart",
            "live:other",
            "live:checkout",
            "live:payment",
            f"live:category:{OTHER}",
            f"live:offer:{OTHER}",
            "active",
            "purchased",
            "failures",
            "abandoned:checkout",
            "abandoned:payment",
            "folded:category",
            "folded:offer",
        )
    }
    methods = [f"{i:040d}" for i in range(caps.payment_method)] + [OTHER]
    minute = {name: BIG for name in rates.SERIES} | {f"m:{m}:{step}": BIG for m in methods for step in METHOD_STEPS}
    now = 1_735_732_800_000
    r = {str(now - i * 60_000): dict(minute) for i in range(61)}
    hw = {s.topic(t): BIG for t in ("page-events", "checkout-events", "payment-events")}
    return {"seq": 2**63 - 1, "v": v, "hw": hw, "r": r}


@pytest.mark.parametrize("caps", [Caps(), Caps(category=1, offer=1, payment_method=1), Caps(1000, 1000, 30)])
def test_the_largest_row_report_and_snapshot_fit_the_bound(caps):
    s = Settings(topic_prefix="t" * 40)
    row = largest_row(caps, s)
    bound = produce_guard.worst_case_row_bytes(caps, s)
    assert len(msgspec.json.encode(row)) <= bound
    report = {"seller": "s" * 200, "p": 11, "seq": row["seq"], "v": row["v"], "r": row["r"]}
    assert len(msgspec.json.encode(report)) <= bound
    live = {k.removeprefix("live:"): n for k, n in row["v"].items() if k.startswith("live:")}
    per_minute = rates.series(row["r"], 1_735_732_800_000, caps.payment_method)
    snap = build_snapshot("s" * 200, {f"live:{k}": n for k, n in live.items()} | row["v"], Windows(), rates=per_minute)
    assert len(msgspec.json.encode(snap)) <= bound


def test_default_caps_fit_the_default_limit_and_too_large_caps_are_refused_at_start():
    s = Settings()
    produce_guard.configure(Caps.from_settings(s), s)
    assert produce_guard.limit == s.worker_max_message_bytes == 1_000_000
    big = Settings(live_max_categories=5000, live_max_offers=5000)
    with pytest.raises(SystemExit, match=r"live_max_categories=5000, live_max_offers=5000.*lower the caps"):
        produce_guard.configure(Caps.from_settings(big), big)


def test_a_message_over_the_limit_is_logged_counted_and_skipped(caplog):
    class Topic:
        sent: list = []

        async def send(self, key, value):
            self.sent.append((key, value))
            return "ok"

    before = worker_metrics.SKIPPED.labels("snapshot")._value.get()
    topic = Topic()
    with caplog.at_level(logging.ERROR, logger="livemetrics.worker"):
        assert asyncio.run(produce_guard.send(topic, b"seller-a", b"x" * 2_000_000, "snapshot")) is None
        assert asyncio.run(produce_guard.send(topic, b"seller-a", b"{}", "snapshot")) == "ok"
    assert topic.sent == [(b"seller-a", b"{}")]
    assert worker_metrics.SKIPPED.labels("snapshot")._value.get() == before + 1
    assert "snapshot for b'seller-a' not produced: 2000520 bytes is over worker_max_message_bytes" in caplog.text


def test_a_size_error_from_the_client_is_handled_not_raised(caplog):
    from aiokafka.errors import MessageSizeTooLargeError

    class Topic:
        async def send(self, key, value):
            raise MessageSizeTooLargeError("The message is 1023992 bytes")

    before = worker_metrics.SKIPPED.labels("sums report")._value.get()
    with caplog.at_level(logging.ERROR, logger="livemetrics.worker"):
        assert asyncio.run(produce_guard.send(Topic(), b"seller-a", b"{}", "sums report")) is None
    assert worker_metrics.SKIPPED.labels("sums report")._value.get() == before + 1
    assert "1023992" in caplog.text
