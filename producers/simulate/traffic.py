"""When sessions start and which of their events are due (pure: a seeded rng and times passed in).

Sessions arrive as a Poisson process whose rate gives ``rate`` events/s on average now, and follows the
daily rhythm from there (``rate`` at the start hour, more in the evening, less at night). At start the
model is *warm*: sessions that began in the last half hour are already under way, so the live cards show
a steady state at once instead of ramping up for minutes. Backfill plans whole days of sessions with
past timestamps, the arrivals per hour following the same rhythm in each seller's time zone.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator

from producers.simulate.catalog import SELLERS, SellerProfile, daily_rhythm
from producers.simulate.sessions import Planned, plan_failure_burst, plan_session

WARM_START_MS = 30 * 60 * 1000
HOUR_MS = 3_600_000
_SEND_FIRST = frozenset({"page_view", "checkout_started", "payment_started", "payment_failed", "payment_succeeded"})


def mean_events_per_session(profiles=SELLERS, samples: int = 600, seed: int = 7) -> float:
    rng = random.Random(seed)
    shares = [p.traffic_share for p in profiles]
    total = 0
    for _ in range(samples):
        total += len(plan_session(rng, rng.choices(profiles, weights=shares)[0], 0))
    return total / samples


def local_hour(ms: int, utc_offset_h: float = 0.0) -> float:
    return ((ms / HOUR_MS) + utc_offset_h) % 24


class LiveTraffic:
    """A heap of planned events across all sessions; ``due(now)`` pops what should be sent by now."""

    def __init__(
        self,
        rate: float,
        now_ms: int,
        seed: int | None = None,
        profiles=SELLERS,
        warm: bool = True,
        utc_offset_h: float = 0.0,
        rhythm: Callable[[float], float] = daily_rhythm,
    ):
        self.rng = random.Random(seed)
        self.rate = rate
        self.profiles = tuple(profiles)
        self.shares = [p.traffic_share for p in self.profiles]
        self.mean_events = mean_events_per_session(self.profiles)
        self.utc_offset_h = utc_offset_h
        self.rhythm = rhythm
        self.start_rhythm = rhythm(local_hour(now_ms, utc_offset_h))
        self.heap: list[tuple[int, int, str, Planned]] = []
        self.seq = itertools.count()
        self.sessions = 0
        self.next_arrival_ms = now_ms if rate > 0 else 2**62  # rate 0: only bursts
        if warm and rate > 0:
            self._spawn(now_ms - WARM_START_MS, now_ms, cutoff_ms=now_ms)
        self._spawn_to(now_ms)

    def session_rate_per_s(self, at_ms: int) -> float:
        factor = self.rhythm(local_hour(at_ms, self.utc_offset_h)) / self.start_rhythm
        return self.rate * factor / self.mean_events

    def _spawn(self, from_ms: int, to_ms: int, cutoff_ms: int | None = None) -> None:
        t = from_ms
        while True:
            lam = self.session_rate_per_s(t)
            if lam <= 0:
                return
            t += int(self.rng.expovariate(lam) * 1000)
            if t >= to_ms:
                self.next_arrival_ms = t
                return
            self.add_session(t, cutoff_ms)

    def _spawn_to(self, now_ms: int) -> None:
        if self.next_arrival_ms <= now_ms:
            first = self.next_arrival_ms
            self.add_session(first)
            self._spawn(first, now_ms + 1)

    def add_session(self, start_ms: int, cutoff_ms: int | None = None) -> None:
        seller = self.rng.choices(self.profiles, weights=self.shares)[0]
        events = plan_session(self.rng, seller, start_ms)
        if cutoff_ms is not None:  # a warm-start session: only what happens from now on, from a real event
            events = [e for e in events if e.at_ms >= cutoff_ms]
            while events and events[0].body["type"] not in _SEND_FIRST:
                events.pop(0)
            if not events:
                return
        self.sessions += 1
        self.push(seller.seller_id, events)

    def add_burst(self, now_ms: int, n: int, seller: SellerProfile | None = None) -> None:
        seller = seller or self.profiles[0]
        self.push(seller.seller_id, plan_failure_burst(self.rng, seller, now_ms, n))

    def push(self, seller_id: str, events: list[Planned]) -> None:
        for e in events:
            heapq.heappush(self.heap, (e.at_ms, next(self.seq), seller_id, e))

    def due(self, now_ms: int) -> list[tuple[str, Planned]]:
        self._spawn_to(now_ms)
        out = []
        while self.heap and self.heap[0][0] <= now_ms:
            _, _, seller_id, e = heapq.heappop(self.heap)
            out.append((seller_id, e))
        return out


def backfill_plan(
    days: float, end_ms: int, sessions_per_day: int, seed: int | None = None, profiles=SELLERS
) -> Iterator[tuple[str, Planned]]:
    """Every event of ``days`` of history before ``end_ms``, hour by hour (in time order per hour)."""
    rng = random.Random(seed)
    start = end_ms - int(days * 24 * HOUR_MS)
    start -= start % HOUR_MS
    for hour_start in range(start, end_ms, HOUR_MS):
        batch: list[tuple[int, str, Planned]] = []
        for p in profiles:
            expected = (
                sessions_per_day * p.traffic_share / 24 * daily_rhythm(local_hour(hour_start, p.utc_offset_h) + 0.5)
            )
            for _ in range(poisson(rng, expected)):
                begin = hour_start + rng.randrange(HOUR_MS)
                if begin >= end_ms:
                    continue
                batch += [(e.at_ms, p.seller_id, e) for e in plan_session(rng, p, begin) if e.at_ms < end_ms]
        batch.sort(key=lambda x: x[0])
        for _, sid, e in batch:
            yield sid, e


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k
