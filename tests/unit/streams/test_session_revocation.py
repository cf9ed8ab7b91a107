"""A revocation never splits a batch of the sessions agent (docs/operations.md, "Lost session: analysis",
weak point 1): a batch folded before a revocation is refused at its write after it, so the partition's
sums are rebuilt from the stored sessions by the next batch instead of starting again from zero; and the
revocation handler waits for the batch in flight (``streams/in_flight.py``). The worker's real fold and
write run on Faust's memory store (no broker is needed: changelog rows are only queued)."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import pytest

from livemetrics.contract import Event, Page, encode
from streams.in_flight import BatchesInFlight, BatchStillRunning
from tests.support.services import free_port
from tests.unit.streams.test_minute_rates import worker  # noqa: F401 - the fixture: worker modules, memory store

SELLER = "revoked-shop"
PARTITION = 0


@pytest.fixture
def fold(worker):  # noqa: F811
    from streams import session_batch
    from streams import session_memory as memory
    from streams.tables import sessions, sessions_changelog

    if sessions_changelog._producer is None:  # its rows go nowhere (a closed port), never to a broker
        sessions_changelog.settings = sessions_changelog.settings.model_copy(
            update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}
        )
    memory.forget()
    sessions.data.data.clear()
    offsets = iter(range(10**6))

    def messages(*session_ids: str) -> list:
        now = int(time.time() * 1000)
        return [
            SimpleNamespace(
                topic="raw.page-events",
                partition=PARTITION,
                offset=next(offsets),
                value=encode(
                    Event(
                        event_id=f"ev-{sid}-{now}",
                        type="page_view",
                        seller_id=SELLER,
                        session_id=sid,
                        ts=now,
                        received_at=now,
                        page=Page(type="home"),
                    )
                ),
            )
            for sid in session_ids
        ]

    return SimpleNamespace(
        batch=lambda *sids: session_batch.fold(messages(*sids)),
        write=session_batch.write,
        memory=memory,
        store=sessions.data.data,
    )


def sums_and_recount(store) -> tuple[dict, dict]:
    """The seller's sums row gauges, and the same gauges recounted from its stored sessions."""
    from streams import state as sm
    from streams.caps import cap_gauges
    from streams.session_batch import CAPS
    from streams.table_keys import parse_sums_key, sums_key

    recount: dict[str, int] = {}
    for key, raw in store.items():
        if parse_sums_key(key) is None and raw is not None:
            sm.add_into(recount, sm.loads(raw).emitted)
    return json.loads(store[sums_key(SELLER, PARTITION)])["v"], cap_gauges(recount, CAPS)


def test_a_batch_folded_before_a_revocation_is_not_written_after_it_and_the_sums_stay_whole(fold):
    fold.write(fold.batch("s1", "s2", "s3"))
    row, recount = sums_and_recount(fold.store)
    assert row == recount and recount  # three active sessions counted
    spanning = fold.batch("s4")  # folded, then its alerts' delivery awaited...
    fold.memory.forget()  # ...while the partitions are revoked
    with pytest.raises(fold.memory.StaleBatch):
        fold.write(spanning)
    assert PARTITION not in fold.memory.deadlines  # nothing recreated: the next batch rebuilds
    # the next batch (the revoked one comes again, and a new session) counts every stored session
    fold.write(fold.batch("s4", "s5"))
    row, recount = sums_and_recount(fold.store)
    assert row == recount
    assert recount == sums_after_one_batch(fold, "s1", "s2", "s3", "s4", "s5")


def sums_after_one_batch(fold, *session_ids: str) -> dict:
    """The gauges of these sessions all folded in one batch on a fresh store."""
    saved = dict(fold.store)
    fold.memory.forget()
    fold.store.clear()
    try:
        fold.write(fold.batch(*session_ids))
        return sums_and_recount(fold.store)[0]
    finally:
        fold.memory.forget()
        fold.store.clear()
        fold.store.update(saved)


def test_the_revocation_waits_for_the_batch_in_flight_so_its_write_is_kept(fold):
    in_flight, order = BatchesInFlight(), []

    async def scenario() -> None:
        delivered = asyncio.Event()

        async def handle() -> None:  # as agents/sessions.py::handle: fold, await the alerts, write
            with in_flight.batch():
                batches = fold.batch("s1", "s2")
                await delivered.wait()
                fold.write(batches)
                order.append("written")

        async def revoke() -> None:  # as agents/sessions.py::_forget_deadlines
            await in_flight.idle(timeout=5)
            fold.memory.forget()
            order.append("forgotten")

        batch = asyncio.create_task(handle())
        await asyncio.sleep(0)
        revocation = asyncio.create_task(revoke())
        await asyncio.sleep(0.05)
        assert not revocation.done()  # held by the batch
        delivered.set()
        await asyncio.gather(batch, revocation)

    asyncio.run(scenario())
    assert order == ["written", "forgotten"]
    row, recount = sums_and_recount(fold.store)
    assert row == recount and recount


def test_idle_returns_at_once_without_a_batch_and_gives_up_after_its_timeout():
    in_flight = BatchesInFlight()

    async def scenario() -> float:
        await asyncio.wait_for(in_flight.idle(timeout=0.01), 1)  # nothing running
        with in_flight.batch():
            start = time.monotonic()
            with pytest.raises(BatchStillRunning):
                await in_flight.idle(timeout=0.2)
            return time.monotonic() - start

    assert 0.15 <= asyncio.run(scenario()) < 2
    assert in_flight.running == 0
