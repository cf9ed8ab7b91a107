"""A slow dashboard gets the latest snapshot only (coalesced) and a bounded alert queue that closes the
socket on overflow instead of dropping alerts silently."""

import asyncio

from api.live_feed import ALERT_QUEUE_LIMIT, Subscriber


def test_snapshots_coalesce_latest_wins():
    async def run():
        sub = Subscriber("s")
        for i in range(1000):
            sub.offer_snapshot({"n": i}, f"msg{i}")
        return sub

    sub = asyncio.run(run())
    assert sub.snapshot == ({"n": 999}, "msg999") and sub.wake.is_set()


def test_alert_overflow_is_flagged_never_silent():
    async def run():
        sub = Subscriber("s")
        for i in range(ALERT_QUEUE_LIMIT + 5):
            sub.offer_alert({"alert_id": str(i)})
        return sub

    sub = asyncio.run(run())
    assert len(sub.alerts) == ALERT_QUEUE_LIMIT and sub.overflowed
