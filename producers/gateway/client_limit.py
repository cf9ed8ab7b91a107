"""The per-client-IP limit on browser-key traffic: one visitor (or one script with a copied key) cannot
spend a whole key's rate, whatever key it uses. Server keys are not limited per IP (a seller's servers
send everyone's events from a few addresses).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from livemetrics.contract import MAX_BATCH
from producers.gateway.auth import RateLimiter

# A bucket is dropped once it holds the largest batch again (an idle client): a new one, which starts with
# room for the batch it is asked for, then answers every request exactly as the dropped one would have.
_PRUNE_EVERY_S = 10.0


@lru_cache(maxsize=65536)
def client_key(ip: str | None) -> str:
    """The address a limit applies to: an IPv4 address, or the /64 of an IPv6 one (one host usually holds
    a whole /64, so per-address buckets would be free to multiply). Unknown peers share one bucket."""
    if not ip:
        return "?"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if addr.version == 6:
        if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d is that IPv4 client
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))
    return str(addr)


class ClientLimiter:
    """Token buckets per client address, ``rate`` events/s each with a burst of two seconds' worth."""

    def __init__(self, rate: float):
        self.rate = rate
        self._buckets = RateLimiter(rate, namespace="ip")  # the gateway's buckets when it has several processes
        self._pruned_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, ip: str | None, n: int, now: float) -> int:
        """0 when ``n`` events from ``ip`` may pass, else the whole seconds to wait."""
        if now - self._pruned_at >= _PRUNE_EVERY_S:
            self._prune(now)
        return self._buckets.take(client_key(ip), self.rate, n, now)

    def refusal(self, ip: str | None, n: int, now: float) -> int:
        """What ``take`` would answer for ``n`` events from ``ip`` now, changing nothing."""
        return self._buckets.refusal(client_key(ip), self.rate, n, now)

    def room(self, ip: str | None, now: float) -> float:
        """About how many events ``ip`` could send now (``take`` decides)."""
        return self._buckets.room(client_key(ip), self.rate, now)

    def charge(self, ip: str | None, n: float, now: float) -> None:
        """Spend ``n`` more events' worth after the fact (``RateLimiter.charge``)."""
        self._buckets.charge(client_key(ip), self.rate, n, now)

    def _prune(self, now: float) -> None:
        self._pruned_at = now
        full = max(self.rate * 2, MAX_BATCH)
        buckets = self._buckets._buckets
        for key in [k for k, (tokens, at) in buckets.items() if tokens + (now - at) * self.rate >= full]:
            del buckets[key]

    def __len__(self) -> int:
        return len(self._buckets._buckets)
