"""The per-minute windowed table, fed through the gauges agent (``agent.test_context()``, memory store):
every window equals a recount from the raw events, a replay changes nothing, a window the agent failed
to write is repaired on redelivery, and windows older than the hour expire."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import pytest

from livemetrics.contract import Event, Page, Payment
from livemetrics.settings import Settings

SELLERS = ("seller-a", "seller-b")
TYPES = ("page_view", "heartbeat", "checkout_started", "payment_started", "payment_succeeded", "payment_failed")
# What each raw event type counts as, written here from docs/live-semantics.md.
COUNTED = {
    "page_view": "page_views",
    "checkout_started": "checkouts",
    "payment_started": "payments_started",
    "payment_succeeded": "payments_succeeded",
    "payment_failed": "payments_failed",
}


WORKER_SETTINGS: dict = {}  # the settings the worker of this test process was built with


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    """The worker's modules, built once per test process with the memory store (no broker is needed by
    test_context; one worker per process: streams/app.py)."""
    from streams.app import build_worker

    if not WORKER_SETTINGS:
        WORKER_SETTINGS["s"] = Settings(store="memory://", data_dir=tmp_path_factory.mktemp("worker"))
    build_worker(WORKER_SETTINGS["s"])
    from streams import minute_rates, rates
    from streams.agents import gauges

    return gauges, minute_rates, rates


def raw_event(rng: random.Random, seller: str, at: int) -> Event:
    t = rng.choice(TYPES)
    e = Event(
        event_id=str(uuid.UUID(int=rng.getrandbits(128))),
        type=t,
        seller_id=seller,
        session_id=f"sess-{rng.randrange(40):04d}",
        ts=at,
        received_at=at,
        is_bot=rng.random() < 0.05,
        backfill=rng.random() < 0.05,
    )
    if t == "page_view":
        e.page = Page(type="home")
    if t.startswith("payment_"):
        e.payment = Payment(method=rng.choice(("card", "paypal")), amount=1.0, currency="EUR", order_id="o")
    return e


def recount(delivered: list[tuple[int, int, Event]], seller: str, lo: int) -> dict[str, dict[str, int]]:
    """Per minute from ``lo``: events of ``seller`` by kind (each (partition, offset) once; bots and
    backfill never), and by payment method and step."""
    out: dict[str, dict[str, int]] = {}
    for _, _, e in {(p, off): (p, off, e) for p, off, e in delivered}.values():
        if e.seller_id != seller or e.is_bot or e.backfill or e.type not in COUNTED:
            continue
        minute = e.received_at // 60_000 * 60_000
        if minute < lo:
            continue
        b = out.setdefault(str(minute), {})
        b[COUNTED[e.type]] = b.get(COUNTED[e.type], 0) + 1
        if e.type.startswith("payment_"):
            m = f"m:{e.payment.method}:{e.type.removeprefix('payment_')}"
            b[m] = b.get(m, 0) + 1
    return out


class Partition:
    """One source partition as the sessions agent keeps it: per seller, a sums row whose per-minute
    counts are guarded by the highest offset counted."""

    def __init__(self, rates, p: int):
        self.rates, self.p, self.next_offset, self.seq = rates, p, 0, 0
        self.rows: dict[str, dict] = {}

    def fold(self, offset: int, e: Event, now: int) -> None:
        row = self.rows.setdefault(e.seller_id, {"r": {}, "hw": -1})
        if offset > row["hw"]:  # a redelivery (offset at or below the mark) is not counted again
            row["hw"] = offset
            self.rates.count(row["r"], e, now)

    def report(self, seller: str, now: int) -> dict:
        self.seq += 1
        return {
            "seller": seller,
            "p": self.p,
            "seq": self.seq,
            "v": {},
            "r": self.rates.prune(self.rows[seller]["r"], now),
        }


async def send(agent, gauges, report: dict) -> None:
    seller = report["seller"]
    await agent.put(json.dumps(report).encode(), key=seller.encode(), partition=gauges.partition_of(seller))


def test_windows_equal_the_recount_and_a_replay_changes_nothing(worker):
    gauges, minute_rates, rates = worker
    now = gauges.now_ms()
    lo = rates.first_bucket(now)
    rng = random.Random(11)
    parts = [Partition(rates, p) for p in range(3)]
    delivered: list[tuple[int, int, Event]] = []
    reports: list[dict] = []

    async def run() -> None:
        async with gauges.keep_gauges.test_context() as agent:
            for _ in range(300):
                if delivered and rng.random() < 0.15:  # Kafka delivers an event already folded again
                    p, off, e = rng.choice(delivered)
                else:
                    p = rng.randrange(3)
                    e = raw_event(rng, rng.choice(SELLERS), now - rng.randrange(70 * 60_000))
                    off, parts[p].next_offset = parts[p].next_offset, parts[p].next_offset + 1
                parts[p].fold(off, e, now)
                delivered.append((p, off, e))
                reports.append(parts[p].report(e.seller_id, now))
                await send(agent, gauges, reports[-1])
                for seller in SELLERS:
                    assert minute_rates.last_hour(seller, now) == recount(delivered, seller, lo)
            before = {s: minute_rates.last_hour(s, now) for s in SELLERS}
            assert all(before.values())
            # Each window is in Faust's expiry heaps once, however often it was set.
            table = minute_rates._table
            assert sum(len(h) for h in table._partition_timestamps.values()) == sum(
                len(keys) for keys in table._partition_timestamp_keys.values()
            )
            for report in rng.sample(reports, len(reports)):  # every report again, in any order
                await send(agent, gauges, report)
            assert {s: minute_rates.last_hour(s, now) for s in SELLERS} == before
            # The snapshot's rates_per_minute is drawn from these windows.
            snap, per_minute = gauges.snapshot_for("seller-a", now)
            assert snap["rates_per_minute"] == per_minute == rates.series(before["seller-a"], now)

    asyncio.run(run())


def test_a_window_lost_before_a_crash_is_set_again_by_the_redelivered_report(worker):
    """The gauges row landed and the window write did not: the redelivered report (same seq, so the
    gauges keep it as it is) sets the window again. The snapshot reads the windowed table throughout."""
    gauges, minute_rates, rates = worker
    now = gauges.now_ms()
    minute = now // 60_000 * 60_000
    report = {
        "seller": "seller-c",
        "p": 2,
        "seq": 7,
        "v": {"active": 1},
        "r": {str(minute): {"page_views": 4, "payments_failed": 1, "m:card:failed": 1}},
    }

    def shown() -> tuple[int, int]:
        series = gauges.snapshot_for("seller-c", now)[0]["rates_per_minute"]["series"]
        return series["page_views"][-1], series["payments_failed"][-1]

    async def run() -> None:
        async with gauges.keep_gauges.test_context() as agent:
            await send(agent, gauges, report)
            assert shown() == (4, 1)
            minute_rates._table.data.data.pop(("seller-c", minute_rates.window_of(minute)))
            assert shown() == (0, 0) and gauges.totals_for("seller-c") == {"active": 1}
            await send(agent, gauges, report)
            assert shown() == (4, 1)
            assert minute_rates.stored("seller-c", minute) == report["r"][str(minute)]

    asyncio.run(run())


def test_windows_older_than_the_hour_expire_also_when_recovered(worker, monkeypatch):
    gauges, minute_rates, rates = worker
    now = gauges.now_ms()
    old_now = now - 2 * 3_600_000
    old_minute, minute = old_now // 60_000 * 60_000, now // 60_000 * 60_000
    table = minute_rates._table

    async def run() -> None:
        async with gauges.keep_gauges.test_context() as agent:
            with monkeypatch.context() as mp:  # a report sent two hours ago
                mp.setattr(gauges, "now_ms", lambda: old_now)
                await send(
                    agent,
                    gauges,
                    {"seller": "seller-d", "p": 0, "seq": 1, "v": {}, "r": {str(old_minute): {"page_views": 2}}},
                )
            await send(
                agent, gauges, {"seller": "seller-d", "p": 0, "seq": 2, "v": {}, "r": {str(minute): {"page_views": 1}}}
            )
        # A window recovered from the changelog after a restart (as the memory store's recovery puts it).
        recovered = ("seller-e", minute_rates.window_of(old_minute + 60_000))
        table.data.data[recovered] = {"checkouts": 3}
        table.data._key_partition[recovered] = 1
        assert minute_rates.register_recovered() == 1 and minute_rates.register_recovered() == 0
        assert minute_rates.stored("seller-d", old_minute) == {"page_views": 2}
        await table._del_old_keys()  # Faust's table cleanup (every table_cleanup_interval)
        assert minute_rates.stored("seller-d", old_minute) is None
        assert recovered not in table.data.data
        assert minute_rates.stored("seller-d", minute) == {"page_views": 1}
        assert minute_rates.last_hour("seller-d", now) == {str(minute): {"page_views": 1}}

    asyncio.run(run())
