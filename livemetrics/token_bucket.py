"""One client's budget of actions: ``burst`` at once, then ``rate`` a second (a token bucket), for one
connection's own pace (a WebSocket's frames, its messages); keyed limits of many clients are elsewhere
(api/rate_limit.py, producers/gateway/auth.py)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, burst: float, rate: float, clock: Callable[[], float] = time.monotonic):
        self.burst, self.rate, self.clock = float(burst), rate, clock
        self.tokens, self.at = float(burst), clock()

    def spend(self) -> bool:
        """One action: False when it is over the budget (nothing spent then)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
