"""Push on change, coalesced and bounded per key: what the worker uses to send a seller's numbers as soon
as they change instead of on a fixed timer (a 100 ms timer then a 500 ms one used to set the latency: docs/architecture.md, Live numbers).

``Pacer`` (pure) decides: a key marked changed is due at once if it was not pushed in the last
``min_gap_s``, else at the end of that gap; every change marked in between goes out in that one push
(the push reads the latest numbers), none is dropped. ``PushLoop`` runs it on the event loop: woken by
``mark``, it hands the due keys to its ``push`` coroutine, then sleeps until the next key is due or a
new mark comes. A push that raises ends the loop (the worker stops: a silent dashboard is worse)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Pacer(Generic[K]):
    def __init__(self, min_gap_s: float):
        self.min_gap_s = min_gap_s
        self.pending: set[K] = set()
        self.last: dict[K, float] = {}  # key -> when it was last pushed (only while within the gap)

    def mark(self, keys: Iterable[K]) -> None:
        self.pending.update(keys)

    def take(self, now: float) -> list[K]:
        """The pending keys due at ``now`` (no longer pending; pushed at ``now``)."""
        ready = [k for k in self.pending if now - self.last.get(k, -1e18) >= self.min_gap_s]
        if ready:
            self.pending.difference_update(ready)
            # Forget keys whose gap has passed: without a pending change they are due at once anyway.
            self.last = {k: t for k, t in self.last.items() if now - t < self.min_gap_s}
            for k in ready:
                self.last[k] = now
        return ready

    def next_due(self) -> float | None:
        """When the earliest pending key is due (None: nothing pending)."""
        if not self.pending:
            return None
        return min(self.last.get(k, -1e18) for k in self.pending) + self.min_gap_s


class PushLoop(Generic[K]):
    def __init__(self, min_gap_s: float, push: Callable[[list[K]], Awaitable[None]], idle_check_s: float = 1.0):
        self.pacer: Pacer[K] = Pacer(min_gap_s)
        self.push = push
        # A bound on how long a key could wait if something marked it without waking the loop.
        self.idle_check_s = idle_check_s
        self._wake = asyncio.Event()

    def mark(self, *keys: K) -> None:
        self.pacer.mark(keys)
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before taking: a mark during the push wakes the next round
            ready = self.pacer.take(time.monotonic())
            if ready:
                await self.push(ready)
            due = self.pacer.next_due()
            wait = self.idle_check_s if due is None else min(self.idle_check_s, max(0.0, due - time.monotonic()))
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass
