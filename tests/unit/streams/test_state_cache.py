"""The session-state cache in front of the store (streams/state_cache.py) changes nothing the worker
writes: the same batches give the same store with or without it, through revocations and expiry; it
holds what the store holds; and a batch folded before a revocation never brings its reads into the
next assignment's cache. The worker's real fold and write on Faust's memory store (no broker)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livemetrics.contract import Checkout, Event, Page, Payment, encode
from streams.state_cache import MISSING, StateCache
from tests.support.services import free_port
from tests.unit.streams.test_minute_rates import worker  # noqa: F401 - the fixture: worker modules, memory store

SELLER = "cached-shop"
PARTITION = 0
T0 = 1_800_000_000_000


def test_least_recently_used_entries_go_first():
    cache = StateCache(2)
    cache.put(b"a", None)
    cache.put(b"b", None)
    assert cache.get(b"a") is None  # a is now the most recently used
    cache.put(b"c", None)
    assert cache.get(b"b") is MISSING and cache.get(b"a") is None and cache.get(b"c") is None
    assert len(cache) == 2


def test_capacity_zero_keeps_nothing():
    cache = StateCache(0)
    cache.put(b"a", None)
    assert cache.get(b"a") is MISSING and len(cache) == 0


@pytest.fixture
def fold(worker, monkeypatch):  # noqa: F811
    from streams import session_batch
    from streams import session_memory as memory
    from streams.tables import sessions, sessions_changelog

    if sessions_changelog._producer is None:  # its rows go nowhere (a closed port), never to a broker
        sessions_changelog.settings = sessions_changelog.settings.model_copy(
            update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}
        )
    clock = SimpleNamespace(now=T0, offset=0)
    monkeypatch.setattr(session_batch, "now_ms", lambda: clock.now)
    capacity = memory.state_cache.capacity

    def reset(cache_entries: int) -> None:
        memory.state_cache.capacity = cache_entries
        memory.forget()
        sessions.data.data.clear()
        clock.now, clock.offset = T0, 0

    def event(sid: str, kind: str) -> SimpleNamespace:
        clock.offset += 1
        ev = Event(
            event_id=f"ev-{clock.offset}",
            type=kind,
            seller_id=SELLER,
            session_id=sid,
            ts=clock.now,
            received_at=clock.now,
        )
        if kind == "page_view":
            ev.page = Page(type="category", category="lamps")
        elif kind == "checkout_started":
            ev.checkout = Checkout(items=[], total=10.0, currency="EUR")
        else:
            ev.payment = Payment(method="card", amount=10.0, currency="EUR", order_id="o-1")
        return SimpleNamespace(topic="raw.page-events", partition=PARTITION, offset=clock.offset, value=encode(ev))

    def tick() -> SimpleNamespace:
        return SimpleNamespace(topic=session_batch.TICKS_TOPIC, partition=PARTITION, offset=-1, value=b"")

    yield SimpleNamespace(
        reset=reset, event=event, tick=tick, clock=clock, memory=memory, store=sessions.data.data, sb=session_batch
    )
    memory.state_cache.capacity = capacity
    memory.forget()
    sessions.data.data.clear()


def comparable(store) -> dict:
    """The store, with the sums rows' clock (wall time) left out."""
    from streams.table_keys import parse_sums_key

    out = {}
    for key, raw in store.items():
        if parse_sums_key(key) is not None and raw is not None:
            row = json.loads(raw)
            row.pop("seq")
            out[key] = row
        else:
            out[key] = raw
    return out


def assert_mirrors_store(fold) -> None:
    for key, cached in fold.memory.state_cache._entries.items():
        assert cached == (fold.store.get(key) or None), key


KINDS = ("page_view", "page_view", "checkout_started", "payment_failed", "payment_succeeded")
step = st.one_of(
    st.tuples(st.just("events"), st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from(KINDS)), max_size=6)),
    st.tuples(st.just("later"), st.sampled_from([1, 6, 31, 65, 95])),  # minutes pass, then a tick
    st.tuples(st.just("revoke"), st.just(0)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=14))
def test_the_same_batches_give_the_same_store_with_and_without_the_cache(fold, steps):
    stores = []
    for cache_entries in (0, 2):  # none, and one so small that entries come and go all the time
        fold.reset(cache_entries)
        for what, arg in steps:
            if what == "events":
                fold.sb.write(fold.sb.fold([fold.event(sid, kind) for sid, kind in arg]))
            elif what == "later":
                fold.clock.now += arg * 60_000
                fold.sb.write(fold.sb.fold([fold.tick()]))
            else:
                fold.memory.forget()  # a revocation; the partition comes back (rebuilt from the store)
            assert_mirrors_store(fold)
        stores.append(comparable(fold.store))
    assert stores[0] == stores[1]


def test_a_second_batch_of_the_same_sessions_reads_them_from_the_cache(fold):
    fold.reset(100)
    fold.sb.write(fold.sb.fold([fold.event(s, "page_view") for s in "abc"]))
    cache = fold.memory.state_cache
    hits = cache.hits
    fold.sb.write(fold.sb.fold([fold.event(s, "checkout_started") for s in "abc"]))
    assert cache.hits == hits + 3
    assert_mirrors_store(fold)


def test_a_batch_folded_before_a_revocation_brings_nothing_into_the_next_cache(fold):
    from streams import state as sm
    from streams.table_keys import session_key

    fold.reset(100)
    fold.sb.write(fold.sb.fold([fold.event("a", "page_view")]))
    spanning = fold.sb.fold([fold.event("a", "checkout_started")])  # read "a" from the old cache
    fold.memory.forget()
    # the table's recovery puts the next owner's newer state into the store meanwhile
    key = session_key(SELLER, "a")
    recovered = sm.loads(fold.store[key])
    recovered.pages_seen = 99
    fold.store[key] = sm.dumps(recovered)
    with pytest.raises(fold.memory.StaleBatch):
        fold.sb.write(spanning)
    assert len(fold.memory.state_cache) == 0
    [batch] = fold.sb.fold([fold.event("a", "page_view")])
    assert batch.states[key].pages_seen == 100  # from the recovered store, not the spanning batch's read
