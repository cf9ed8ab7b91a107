"""The sessions agent folds and writes a batch with the cyclic GC off (``streams/agents/sessions.py::handle``):
the batch's objects live from the fold to the end of the write and are freed by refcount, so a collection in
between only scans and promotes them (BENCHMARKS.md, eighteenth session). It is back on after the batch, also
when the write raises, and while the batch's alerts wait on the broker. The worker's real fold and write run
on Faust's memory store (changelog rows are only queued)."""

from __future__ import annotations

import asyncio
import gc
import time
from types import SimpleNamespace

import pytest

from livemetrics.contract import Event, Page, Payment, encode
from tests.support.services import free_port
from tests.unit.streams.test_minute_rates import worker  # noqa: F401 - the fixture: worker modules, memory store

SELLER = "gc-shop"
OFFSETS = iter(range(10**9))  # the seller's sums row stays in the store between tests: never an offset twice


def message(session_id: str, type_: str = "page_view") -> SimpleNamespace:
    offset = next(OFFSETS)
    now = int(time.time() * 1000)
    ev = Event(
        event_id=f"ev-{session_id}-{offset}",
        type=type_,
        seller_id=SELLER,
        session_id=session_id,
        ts=now,
        received_at=now,
        page=Page(type="home") if type_ == "page_view" else None,
        payment=Payment(method="card", amount=10.0, currency="EUR", order_id=f"o-{offset}", error_code="declined")
        if type_ == "payment_failed"
        else None,
    )
    return SimpleNamespace(topic="raw.page-events", partition=0, offset=offset, value=encode(ev))


@pytest.fixture
def agent(worker, monkeypatch):  # noqa: F811
    """``streams.agents.sessions`` with its fold and write (the real ones) and its alert sends recording
    whether the cyclic GC was on when each ran."""
    from streams import session_batch
    from streams import session_memory as memory
    from streams.agents import sessions
    from streams.tables import sessions_changelog

    if sessions_changelog._producer is None:  # its rows go nowhere (a closed port), never to a broker
        sessions_changelog.settings = sessions_changelog.settings.model_copy(
            update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}
        )
    memory.forget()
    monkeypatch.setattr(sessions._FetchWait, "set", True)  # no consumer to tune here
    seen: list[tuple[str, bool]] = []
    real_fold, real_write = session_batch.fold, session_batch.write

    def fold(messages):
        seen.append(("fold", gc.isenabled()))
        return real_fold(messages)

    def write(batches):
        seen.append(("write", gc.isenabled()))
        return real_write(batches)

    async def send(key, value):
        seen.append(("alert", gc.isenabled()))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    monkeypatch.setattr(session_batch, "fold", fold)
    monkeypatch.setattr(session_batch, "write", write)
    monkeypatch.setattr(sessions.payment_alerts, "send", send)
    yield SimpleNamespace(handle=sessions.handle, seen=seen, session_batch=session_batch, monkeypatch=monkeypatch)
    memory.forget()
    gc.enable()


def test_a_batch_is_folded_and_written_with_the_gc_off_and_it_is_on_again_after(agent):
    assert gc.isenabled()
    asyncio.run(agent.handle([message(f"s{i}") for i in range(50)]))
    assert agent.seen == [("fold", False), ("write", False)]
    assert gc.isenabled()


def test_the_gc_is_on_while_the_batch_alerts_are_sent_and_off_again_for_the_write(agent):
    asyncio.run(agent.handle([message("s1"), message("s2", "payment_failed")]))
    assert agent.seen == [("fold", False), ("alert", True), ("write", False)]
    assert gc.isenabled()


def test_the_gc_is_on_again_when_the_write_raises(agent):
    def failing(batches):
        agent.seen.append(("write", gc.isenabled()))
        raise RuntimeError("the store refused the batch")

    agent.monkeypatch.setattr(agent.session_batch, "write", failing)
    with pytest.raises(RuntimeError, match="refused"):
        asyncio.run(agent.handle([message("s1")]))
    assert agent.seen == [("fold", False), ("write", False)]
    assert gc.isenabled()


def test_a_process_with_the_gc_off_leaves_it_off(agent):
    gc.disable()
    try:
        asyncio.run(agent.handle([message("s1"), message("s2", "payment_failed")]))
        assert agent.seen == [("fold", False), ("alert", False), ("write", False)]
        assert not gc.isenabled()
    finally:
        gc.enable()
