"""Per-token request limits of the REST API: a token bucket per principal (a seller token's key id, or
the admin), per API process. A leaked or looping token cannot monopolise ClickHouse or the process; past
its budget a request gets 429 with Retry-After. Only authenticated principals get a bucket, so the
memory is bounded by the number of valid tokens, not by what callers send."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import HTTPException

from livemetrics.keys import Principal
from livemetrics.shares import Shares


class TokenBuckets:
    def __init__(self, rate_per_s: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self._buckets: dict[str, list[float]] = {}  # principal -> [tokens, last refill]
        self._lock = threading.Lock()  # routes run on the loop, sync dependencies in threads

    def wait_s(self, who: str) -> int:
        """0 when ``who`` may make a request now (it is counted), else whole seconds until it may."""
        now = self.clock()
        with self._lock:
            b = self._buckets.get(who)
            if b is None:
                b = self._buckets[who] = [float(self.burst), now]
            b[0] = min(float(self.burst), b[0] + (now - b[1]) * self.rate)
            b[1] = now
            if b[0] >= 1:
                b[0] -= 1
                return 0
            return max(1, math.ceil((1 - b[0]) / self.rate))

    def charge(self, who: str, over: str) -> None:
        """Count one request of ``who``; past its budget HTTPException 429 saying ``over`` (what limit, which
        setting) and when to retry, also as Retry-After."""
        wait = self.wait_s(who)
        if wait:
            raise HTTPException(429, f"{over}; retry in {wait} s", headers={"Retry-After": str(wait)})


_made = threading.Lock()


def check(app, principal: Principal) -> None:
    """Count one request of ``principal``; HTTPException 429 with Retry-After when over its budget."""
    buckets = getattr(app.state, "token_buckets", None)
    if buckets is None:  # one per app, made on first use (settings are on the app's state by then)
        with _made:
            buckets = getattr(app.state, "token_buckets", None)
            if buckets is None:
                s = app.state.settings
                buckets = app.state.token_buckets = TokenBuckets(s.api_rate_per_s, s.api_rate_burst)
    buckets.charge(
        principal.key_id,
        f"this token is over its limit of {buckets.rate:g} requests/s (burst {buckets.burst}, LIVEMETRICS_API_RATE_PER_S)",
    )


@asynccontextmanager
async def turn(app, principal: Principal) -> AsyncIterator[None]:
    """One of ``principal``'s ``api_token_concurrency`` requests under way in this process, waited for (in
    order, holding no thread) while its others run. Every route's ClickHouse read takes a thread of the
    loop's default executor (6 on 2 cores), shared by every seller: a token's burst of 60 reports held them
    all, each as long as its query ran, and another seller's report waited behind them (2.4 s measured)."""
    shares = getattr(app.state, "token_turns", None)
    if shares is None:  # made on the loop, where every request's turn is taken: no race
        shares = app.state.token_turns = Shares(app.state.settings.api_token_concurrency)
    await shares.acquire(principal.key_id)
    try:
        yield
    finally:
        shares.release(principal.key_id)
