"""A sums report the worker sends for a seller whose ``live-deltas`` partition it owns is counted in the
seller's snapshot at once (``gauges.report_ahead``), not after its trip back through the broker and the
worker's own fetches, which waited behind the raw events of a backlog (seconds: BENCHMARKS.md, fourteenth
session). The tables still come from the reports alone, and the report's return changes nothing shown
(no second snapshot). Through the gauges agent's ``test_context`` on the memory store, as
test_minute_rates.py."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.streams.test_minute_rates import send, worker  # noqa: F401 - the module's worker fixture


@pytest.fixture(autouse=True)
def fresh_agent(worker):  # noqa: F811
    """Each test starts with no partition owned and nothing counted ahead, and leaves them so."""
    agent = worker[0].agent
    agent.owned.clear(), agent.ahead.clear()
    yield
    agent.owned.clear(), agent.ahead.clear()


def owning(gauges, seller: str):
    """This worker owns the seller's live-deltas partition (as after an assignment)."""
    gauges.agent.owned.add(gauges.partition_of(seller))


def row(seq: int, active: int, minute: int, views: int) -> dict:
    return {"seq": seq, "v": {"active": active}, "r": {str(minute): {"page_views": views}}}


def test_an_own_report_is_shown_before_it_comes_back_and_its_return_shows_nothing_new(worker):  # noqa: F811
    gauges, minute_rates, rates = worker
    now = gauges.now_ms()
    minute = now // 60_000 * 60_000
    seller = "seller-ahead"

    async def run() -> None:
        async with gauges.keep_gauges.test_context() as agent:
            owning(gauges, seller)
            await send(agent, gauges, {"seller": seller, "p": 1, **row(5, 2, minute, 3)})  # partition 1, stored
            gauges.agent.snapshots.pacer.pending.clear()
            gauges.report_ahead(seller, 0, row(9, 4, minute, 7))  # partition 0, on its way back
            assert seller in gauges.agent.snapshots.pacer.pending  # a snapshot goes now
            snap = gauges.snapshot_for(seller, now)[0]
            assert gauges.totals_for(seller, gauges.shown_parts(seller, gauges.parts_of(seller))) == {"active": 6}
            assert snap["rates_per_minute"]["series"]["page_views"][-1] == 10
            # The tables hold only what came back: partition 1's row and its minute.
            assert gauges.totals_for(seller) == {"active": 2}
            assert minute_rates.stored(seller, minute) == {"page_views": 3}
            gauges.agent.snapshots.pacer.pending.clear()
            await send(agent, gauges, {"seller": seller, "p": 0, **row(9, 4, minute, 7)})  # it comes back
            assert gauges.totals_for(seller) == {"active": 6}
            assert minute_rates.stored(seller, minute) == {"page_views": 10}
            assert gauges.agent.snapshots.pacer.pending == set()  # already shown: no second snapshot
            assert seller not in gauges.agent.ahead
            assert gauges.snapshot_for(seller, now)[0] == snap  # the same numbers, from the tables now
            # A newer report from elsewhere is shown when it arrives, as before.
            await send(agent, gauges, {"seller": seller, "p": 2, **row(3, 1, minute, 1)})
            assert seller in gauges.agent.snapshots.pacer.pending
            assert gauges.totals_for(seller) == {"active": 7}

    asyncio.run(run())


def test_an_older_report_coming_back_first_keeps_the_newer_row_shown(worker):  # noqa: F811
    gauges, minute_rates, rates = worker
    now = gauges.now_ms()
    minute = now // 60_000 * 60_000
    seller = "seller-ahead-2"

    async def run() -> None:
        async with gauges.keep_gauges.test_context() as agent:
            owning(gauges, seller)
            gauges.report_ahead(seller, 0, row(4, 1, minute, 1))
            gauges.report_ahead(seller, 0, row(6, 3, minute, 5))
            gauges.report_ahead(seller, 0, row(5, 2, minute, 2))  # an older one never replaces a newer
            gauges.agent.snapshots.pacer.pending.clear()
            await send(agent, gauges, {"seller": seller, "p": 0, **row(4, 1, minute, 1)})  # the first comes back
            assert gauges.agent.snapshots.pacer.pending == set()
            assert gauges.totals_for(seller) == {"active": 1} and minute_rates.stored(seller, minute) == {
                "page_views": 1
            }
            snap = gauges.snapshot_for(seller, now)[0]
            assert gauges.totals_for(seller, gauges.shown_parts(seller, gauges.parts_of(seller))) == {"active": 3}
            assert snap["rates_per_minute"]["series"]["page_views"][-1] == 5
            await send(agent, gauges, {"seller": seller, "p": 0, **row(6, 3, minute, 5)})
            assert seller not in gauges.agent.ahead and gauges.totals_for(seller) == {"active": 3}

    asyncio.run(run())


def test_a_report_for_a_seller_another_worker_publishes_is_not_shown_ahead(worker):  # noqa: F811
    gauges, minute_rates, rates = worker
    seller = "seller-elsewhere"
    gauges.agent.snapshots.pacer.pending.clear()
    gauges.report_ahead(seller, 0, row(1, 1, 0, 1))
    assert seller not in gauges.agent.ahead and gauges.agent.snapshots.pacer.pending == set()
