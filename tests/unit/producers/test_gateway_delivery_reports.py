"""A request's delivery reports are counted in a queue; the request is settled once all are in, and any
failed report fails it (the gateway then answers 503, never 202)."""

from __future__ import annotations

import asyncio

import pytest

from producers.gateway.delivery import DeliveryUnavailable, _Pending


def test_settled_only_once_every_report_is_in():
    async def main():
        pending = _Pending(asyncio.get_running_loop(), 3)
        pending.report(None, "msg")
        pending.report(None, "msg")
        assert not pending.settle() and not pending.future.done()
        pending.report(None, "msg")
        assert pending.settle()
        assert await pending.future is None

    asyncio.run(main())


@pytest.mark.parametrize("failed_at", [0, 1, 2])
def test_one_failed_report_fails_the_request(failed_at):
    async def main():
        pending = _Pending(asyncio.get_running_loop(), 3)
        for i in range(3):
            assert not pending.future.done()
            pending.report("Local: Message timed out" if i == failed_at else None, "msg")
        assert pending.settle()
        with pytest.raises(DeliveryUnavailable, match="timed out"):
            await pending.future

    asyncio.run(main())
