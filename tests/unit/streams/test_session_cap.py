"""The live sessions cap per seller (docs/live-semantics.md, "Live sessions per seller"; streams/caps.py).

Pure: the share of a partition, and ``HeldSessions`` against a model table (a set of held session keys)
over random event/end sequences cut into random batches: the count always equals the table's, no seller
ever holds more than its cap, a seller that never has more than the cap at once is never refused, and
the table does not depend on where the batches were cut. Then the worker's real fold and write
(``streams/session_batch.py``, Faust's memory store, as in test_session_revocation): a flood of new
sessions past a small cap keeps the seller's earlier sessions and another seller's exactly, flags the
rows, and gives the same store in one batch or in many."""

from __future__ import annotations

import json
import math
import random
import time
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.contract import Event, Page, encode
from streams.caps import SELLER, TOTAL, TOTAL_CEILING, HeldSessions, OncePer, apply_held, sessions_per_partition
from tests.support.services import free_port
from tests.unit.streams.test_minute_rates import worker  # noqa: F401 - the fixture: worker modules, memory store


@given(st.integers(1, 10**7), st.integers(1, 256))
def test_a_partitions_share_covers_the_even_split_and_never_the_whole_cap_more(per_seller, partitions):
    share = sessions_per_partition(per_seller, partitions)
    assert math.ceil(per_seller / partitions) <= share <= per_seller
    if partitions == 1:
        assert share == per_seller


def test_the_default_share_leaves_room_for_uneven_hashing():
    assert sessions_per_partition(200_000, 3) == 67_700  # 66,667 + 4 x 258.2, rounded up
    assert sessions_per_partition(200_000, 1) == 200_000


# An op: (seller, session, True = an event that keeps the session, False = the session ends).
ops_strategy = st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 12), st.booleans()), max_size=120)


def run(ops, cuts: set[int], cap: int) -> tuple[set, dict, dict]:
    """The ops through ``HeldSessions`` in batches cut before each index in ``cuts``: the table (held
    keys), the base counts, and the refusals per seller."""
    table: set[tuple[str, int]] = set()
    base: dict[str, int] = {}
    refused: dict[str, int] = {}
    held = HeldSessions(base, cap)
    for i, (seller, sid, keep) in enumerate(ops):
        if i in cuts:
            apply_held(base, held.delta)
            held = HeldSessions(base, cap)
        key = (seller, sid)
        was = key in table
        if keep:
            if held.admit(seller, was, True):
                table.add(key)
            else:
                refused[seller] = refused.get(seller, 0) + 1
        else:
            held.change(seller, was, False)
            table.discard(key)
        for s in "ab":
            assert held.held(s) == sum(1 for k in table if k[0] == s) <= cap
    apply_held(base, held.delta)
    return table, base, refused


@settings(max_examples=300, deadline=None)
@given(ops_strategy, st.sets(st.integers(0, 120)), st.integers(1, 8))
def test_held_counts_equal_the_table_never_pass_the_cap_and_do_not_depend_on_batches(ops, cuts, cap):
    table, base, refused = run(ops, cuts, cap)
    assert base == {s: n for s in "ab" if (n := sum(1 for k in table if k[0] == s))}
    # Deterministic: the same ops in the same order give the same table, however they are batched.
    assert run(ops, set(), cap) == (table, base, refused)
    assert run(ops, set(range(len(ops))), cap) == (table, base, refused)
    # Exact under the cap: a seller that never has more than ``cap`` sessions at once is never refused.
    for s in "ab":
        live: set[int] = set()
        most = 0
        for seller, sid, keep in ops:
            if seller == s:
                (live.add if keep else live.discard)(sid)
                most = max(most, len(live))
        if most <= cap:
            assert s not in refused


def test_once_per_lets_a_key_through_once_per_interval_and_stays_bounded():
    clock = [0.0]
    once = OncePer(60, lambda: clock[0], max_keys=3)
    assert once.due("a") and not once.due("a") and once.due("b")
    clock[0] = 59.9
    assert not once.due("a")
    clock[0] = 60.0
    assert once.due("a")
    for k in "cdefg":
        once.due(k)
    assert len(once._last) <= 3


# --- the worker's fold and write ----------------------------------------------------------------------------

FLOODER, BYSTANDER, CAP = "flood-shop", "quiet-shop", 5


@pytest.fixture
def batches(worker, monkeypatch):  # noqa: F811
    from streams import session_batch
    from streams import session_memory as memory
    from streams.tables import sessions, sessions_changelog

    if sessions_changelog._producer is None:  # its rows go nowhere (a closed port), never to a broker
        sessions_changelog.settings = sessions_changelog.settings.model_copy(
            update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"}
        )
    monkeypatch.setattr(session_batch, "SESSIONS_CAP", CAP)
    offsets = iter(range(10**6))

    def reset() -> None:
        memory.forget()
        sessions.data.data.clear()

    def messages(*events: tuple[str, str, str]) -> list:
        now = int(time.time() * 1000)
        return [
            SimpleNamespace(
                topic="raw.page-events",
                partition=0,
                offset=next(offsets),
                value=encode(
                    Event(
                        event_id=f"ev-{seller}-{sid}-{page}",
                        type="page_view",
                        seller_id=seller,
                        session_id=sid,
                        ts=now,
                        received_at=now,
                        page=Page(type=page),  # type: ignore[arg-type]
                    )
                ),
            )
            for seller, sid, page in events
        ]

    def run(*events: tuple[str, str, str]) -> list:
        batch = messages(*events)
        session_batch.write(session_batch.fold(batch))
        return batch

    def replay(batch: list) -> None:
        """The same messages again (same offsets), as after a crash or a rebalance."""
        session_batch.write(session_batch.fold(batch))

    def tick_at(at_ms: int) -> None:
        """A timer tick as if the clock read ``at_ms``."""
        monkeypatch.setattr(session_batch, "now_ms", lambda: at_ms)
        tick = SimpleNamespace(topic=session_batch.TICKS_TOPIC, partition=0, offset=next(offsets), value=b"")
        session_batch.write(session_batch.fold([tick]))

    reset()
    yield SimpleNamespace(run=run, replay=replay, tick_at=tick_at, reset=reset, store=sessions.data.data, memory=memory)
    reset()


def gauges(store, seller: str) -> dict:
    from streams.table_keys import sums_key

    return json.loads(store[sums_key(seller, 0)])["v"]


def stored_sessions(store, seller: str) -> set[bytes]:
    from streams.table_keys import parse_sums_key, session_key

    prefix = session_key(seller, "")
    return {k for k, v in store.items() if v is not None and parse_sums_key(k) is None and k.startswith(prefix)}


FLOOD = [(FLOODER, f"new-{i:03d}", "home") for i in range(40)]
EARLY = [(FLOODER, f"early-{i}", "cart") for i in range(3)]
QUIET = [(BYSTANDER, f"q-{i}", "cart") for i in range(3)]


def test_a_flood_past_the_cap_keeps_earlier_sessions_and_other_sellers_exact(batches):
    batches.run(*EARLY, *QUIET)
    assert "capped:sessions" not in gauges(batches.store, FLOODER)
    batches.run(*FLOOD)
    v = gauges(batches.store, FLOODER)
    assert len(stored_sessions(batches.store, FLOODER)) == CAP  # 3 earlier + the first 2 new ones
    assert v["active"] == CAP and v["live:cart"] == 3 and v["live:home"] == 2 and v["capped:sessions"] == 1
    # The earlier sessions are still tracked exactly: they move on to the checkout.
    batches.run(*[(FLOODER, sid, "checkout") for _, sid, _ in EARLY], *FLOOD)
    v = gauges(batches.store, FLOODER)
    assert v["live:checkout"] == 3 and "live:cart" not in v and v["active"] == CAP
    assert gauges(batches.store, BYSTANDER) == {"live:cart": 3, "active": 3}
    assert batches.memory.held[0] == {FLOODER: CAP, BYSTANDER: 3}
    # The same after the memory is rebuilt from the table (a restart or rebalance).
    batches.memory.forget()
    batches.run((BYSTANDER, "q-new", "home"), (FLOODER, "one-more", "home"))
    assert batches.memory.held[0] == {FLOODER: CAP, BYSTANDER: 4}
    assert len(stored_sessions(batches.store, FLOODER)) == CAP
    assert gauges(batches.store, BYSTANDER) == {"live:cart": 3, "live:home": 1, "active": 4}


def test_the_store_does_not_depend_on_how_the_flood_was_batched(batches):
    events = [*EARLY, *QUIET, *random.Random(7).sample(FLOOD, len(FLOOD))]
    batches.run(*events)
    one = {k for k, v in batches.store.items() if v is not None and b"\0sums\0" not in k}
    batches.reset()
    for i in range(0, len(events), 3):
        batches.run(*events[i : i + 3])
    many = {k for k, v in batches.store.items() if v is not None and b"\0sums\0" not in k}
    assert one == many and len(one) == CAP + len(QUIET)


def test_room_comes_back_as_the_sessions_end(batches):
    batches.run(*EARLY, *FLOOD)
    assert gauges(batches.store, FLOODER)["capped:sessions"] == 1
    # Every session ends (timeout + recent window after its last event): the rows go, and so does the flag.
    batches.tick_at(int(time.time() * 1000) + 2 * 3600 * 1000)
    assert stored_sessions(batches.store, FLOODER) == set()
    assert batches.memory.held[0] == {}
    assert gauges(batches.store, FLOODER) == {}


def test_the_refused_counter_counts_each_refused_event_once_not_its_replays(batches):
    from streams.session_batch import SESSIONS_REFUSED

    before = SESSIONS_REFUSED._value.get()
    batches.run(*EARLY)
    flood = batches.run(*FLOOD)
    refused = SESSIONS_REFUSED._value.get() - before
    assert refused == len(FLOOD) - (CAP - len(EARLY))  # the first 2 new sessions are held
    batches.memory.forget()  # a restart or a rebalance: the batch is read again from the last commit
    batches.replay(flood)
    assert SESSIONS_REFUSED._value.get() - before == refused  # the store is the same; nothing new refused
    assert len(stored_sessions(batches.store, FLOODER)) == CAP


# --- the worker's total, shared fairly (streams/caps.py, TOTAL_CEILING) ----------------------------------------

total_ops = st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 15), st.booleans()), max_size=200)


def run_total(ops, cuts: set[int], cap: int, total_cap: int) -> tuple[set, dict, list]:
    """``run`` with a total: the table, the base counts, and each refusal as (seller, why, held, share, total)."""
    table: set[tuple[str, int]] = set()
    base: dict[str, int] = {}
    refusals: list = []
    held = HeldSessions(base, cap, total_cap)
    for i, (seller, sid, keep) in enumerate(ops):
        if i in cuts:
            apply_held(base, held.delta)
            held = HeldSessions(base, cap, total_cap)
        key = (seller, sid)
        was = key in table
        if keep:
            why, n, share, total = held.refusal(seller), held.held(seller), held.share(seller), held.total
            if held.admit(seller, was, True):
                table.add(key)
            else:
                assert not was
                refusals.append((seller, why, n, share, total))
        else:
            held.change(seller, was, False)
            table.discard(key)
        assert held.total == len(table) <= TOTAL_CEILING * total_cap
        assert held.holders == len({k[0] for k in table})
    apply_held(base, held.delta)
    return table, base, refusals


@settings(max_examples=300, deadline=None)
@given(total_ops, st.sets(st.integers(0, 200)), st.integers(1, 20), st.integers(1, 20))
def test_the_total_stays_bounded_and_refuses_only_sellers_at_their_share(ops, cuts, cap, total_cap):
    table, base, refusals = run_total(ops, cuts, cap, total_cap)
    for _seller, why, n, share, total in refusals:
        if why == SELLER:
            assert n >= cap
        else:  # the total: the seller held its fair share or more, or the partition its ceiling
            assert why == TOTAL and total >= total_cap and (n >= share or total >= TOTAL_CEILING * total_cap)
    # Deterministic: however the batches were cut.
    assert run_total(ops, set(), cap, total_cap) == (table, base, refusals)
    assert run_total(ops, set(range(len(ops))), cap, total_cap) == (table, base, refusals)


def test_a_seller_under_its_share_is_served_while_flooders_fill_the_total():
    base: dict[str, int] = {}
    held = HeldSessions(base, cap=1000, total_cap=12)
    admitted = {s: sum(held.admit(s, False, True) for _ in range(40)) for s in ("flood-1", "flood-2")}
    assert admitted == {"flood-1": 12, "flood-2": 6}  # alone: the whole total; then half of it
    assert held.refusal("flood-1") == held.refusal("flood-2") == TOTAL
    assert [held.admit("quiet", False, True) for _ in range(4)] == [True] * 4  # its share: 12 // 3 = 4
    assert held.refusal("quiet") == TOTAL
    assert held.total == 22 < TOTAL_CEILING * 12
    # Room comes back as sessions end: a flooder's end is another's room only under their shares.
    for _ in range(12):
        held.change("flood-1", True, False)
    assert held.total == 10 and held.refusal("flood-2") is None


def test_a_flood_of_many_sellers_past_the_total_leaves_a_seller_under_its_share_exact(batches, monkeypatch):
    from streams import session_batch
    from streams.session_batch import SESSIONS_REFUSED

    total_refused = getattr(session_batch, "SESSIONS_TOTAL_REFUSED", SESSIONS_REFUSED)
    monkeypatch.setattr(session_batch, "SESSIONS_CAP", 100)  # per seller: far above what each floods
    monkeypatch.setattr(session_batch, "SESSIONS_TOTAL_CAP", 12, raising=False)
    before = total_refused._value.get()
    flooders = [f"flood-{n}" for n in range(2)]  # two browser keys of two sellers
    batches.run(*[(f, f"new-{i:03d}", "home") for f in flooders for i in range(40)])
    held_now = batches.memory.held[0]
    assert held_now == {"flood-0": 12, "flood-1": 6}, held_now  # flood-0 alone had the total; flood-1 half
    assert total_refused._value.get() - before == 80 - 18
    assert gauges(batches.store, "flood-1")["capped:sessions"] == 1
    batches.run(*QUIET)  # under its share (12 // 3 = 4): every session kept and counted
    assert gauges(batches.store, BYSTANDER) == {"live:cart": 3, "active": 3}
    assert len(stored_sessions(batches.store, BYSTANDER)) == 3
    batches.run(*[(f, f"more-{i}", "home") for f in flooders for i in range(5)])  # still refused
    assert batches.memory.held[0] == {"flood-0": 12, "flood-1": 6, BYSTANDER: 3}
    assert total_refused._value.get() - before == 80 - 18 + 10
