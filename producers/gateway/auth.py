"""Who is sending: browser keys (bearer), server keys (HMAC-signed, replay-proof), per-key rate limits.

Pure of HTTP: the app passes headers in and maps ``AuthError`` to its status code.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from livemetrics.keys import KeyRecord, KeyRegistry
from livemetrics.origins import request_origin

KEY_ID = "x-livemetrics-key-id"
TIMESTAMP = "x-livemetrics-timestamp"
SIGNATURE = "x-livemetrics-signature"
BACKFILL = "x-livemetrics-backfill"
SIGNED_AS = (
    'v2=HMAC-SHA256(secret, "<timestamp>.<backfill>." + body) in hex, <backfill> 1 when '
    "X-Livemetrics-Backfill is sent, else 0"
)


class AuthError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Caller:
    record: KeyRecord
    backfill: bool = False


class ReplayCacheFull(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"replay cache full; room in {retry_after} s")
        self.retry_after = retry_after


class ReplayCache:
    """Signatures seen in the last ``keep_s`` seconds (a signed request is accepted once).

    Bounded: at ``max_entries`` a new signature raises ``ReplayCacheFull`` (the gateway answers 503 +
    Retry-After) instead of forgetting one still inside its window, which would let that one be replayed.
    """

    def __init__(self, keep_s: float, max_entries: int = 1_000_000):
        self.keep_s = keep_s
        self.max_entries = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def expire(self, now: float) -> int:
        """Forget what can no longer be replayed (its timestamp is stale); the number still remembered."""
        seen = self._seen
        while seen:  # oldest first
            sig, at = next(iter(seen.items()))
            if now - at < self.keep_s:
                break
            seen.popitem(last=False)
        return len(seen)

    def first_time(self, signature: bytes, now: float) -> bool:
        self.expire(now)
        seen = self._seen
        if signature in seen:
            return False
        if len(seen) >= self.max_entries:
            oldest = next(iter(seen.values()))
            # at most keep_s: (oldest + keep_s) - now can round a hair above keep_s in floating point
            raise ReplayCacheFull(max(1, min(math.ceil(oldest + self.keep_s - now), math.ceil(self.keep_s))))
        seen[signature] = now
        return True


class RateLimiter:
    """A token bucket per key, in events per second, with a burst of two seconds' worth."""

    def __init__(self, default_rate: float):
        self.default_rate = default_rate
        self._buckets: dict[str, list[float]] = {}  # key_id -> [tokens, last refill]

    def room(self, key_id: str, rate: float, now: float) -> float:
        """About how many events could pass now (``take`` decides)."""
        rate = rate or self.default_rate
        b = self._buckets.get(key_id)
        return rate * 2 if b is None else min(rate * 2, b[0] + (now - b[1]) * rate)

    def take(self, key_id: str, rate: float, n: int, now: float) -> int:
        """0 when ``n`` events may pass, else the whole seconds to wait before trying again."""
        rate = rate or self.default_rate
        burst = max(rate * 2, n)
        b = self._buckets.get(key_id)
        if b is None:
            b = self._buckets[key_id] = [burst, now]
        b[0] = min(burst, b[0] + (now - b[1]) * rate)
        b[1] = now
        if b[0] >= n:
            b[0] -= n
            return 0
        return max(1, math.ceil((n - b[0]) / rate))

    def charge(self, key_id: str, rate: float, n: float, now: float) -> None:
        """Spend ``n`` more events' worth after the fact (work already done): the bucket may go below zero,
        and the key then waits until it has refilled that far."""
        rate = rate or self.default_rate
        b = self._buckets.get(key_id)
        if b is None:
            b = self._buckets[key_id] = [rate * 2, now]
        b[0] = min(rate * 2, b[0] + (now - b[1]) * rate) - n
        b[1] = now


def bearer_key(headers, query) -> str:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-livemetrics-key") or query.get("key") or ""


_SWEEP_EVERY_S = 60.0  # how often the replay caches of every key are expired (each key's own on each request)


class Authenticator:
    def __init__(self, registry: KeyRegistry, tolerance_s: int, dev_mode: bool = False, replay_max: int = 1_000_000):
        self.registry = registry
        self.tolerance_s = tolerance_s
        self.dev_mode = dev_mode  # browser keys without allowed origins work from anywhere (development only)
        self.replay_max = replay_max
        # One replay cache per server key, each bounded by ``replay_max``: a single cache for every key let
        # one seller (signing requests as fast as the gateway answers, garbage bodies too) fill it, and every
        # other seller's signed requests got 503 while it stayed full. A full cache now refuses its own key
        # only. Keys are verified before their cache is made, so there are at most as many as server keys.
        self.replays: dict[str, ReplayCache] = {}
        self._swept_at = 0.0

    def _replay_cache(self, key_id: str, now: float) -> ReplayCache:
        if now - self._swept_at >= _SWEEP_EVERY_S:  # a key that stopped sending keeps nothing for long
            self._swept_at = now
            for idle in [k for k, c in self.replays.items() if not c.expire(now)]:
                del self.replays[idle]
        cache = self.replays.get(key_id)
        if cache is None:
            cache = self.replays[key_id] = ReplayCache(keep_s=2 * self.tolerance_s, max_entries=self.replay_max)
        return cache

    def caller(self, headers, query, body: bytes) -> Caller:
        """The authenticated caller of a request, or ``AuthError`` (401/403)."""
        backfill = headers.get(BACKFILL, "").strip().lower() in ("1", "true", "yes")
        key_id = headers.get(KEY_ID)
        if key_id is not None:
            rec = self._verify_signed(key_id, headers.get(TIMESTAMP), headers.get(SIGNATURE), body, backfill)
            return Caller(rec, backfill)
        presented = bearer_key(headers, query)
        if not presented:
            raise AuthError(
                401,
                "missing key: send `Authorization: Bearer <browser key>`, `?key=`, "
                "or sign the request with a server key (X-Livemetrics-Key-Id, -Timestamp, -Signature)",
            )
        if presented.startswith("lm_sk_"):
            raise AuthError(401, "server keys must sign requests (X-Livemetrics-Signature), never send the key itself")
        rec = self.registry.authenticate(presented, ("browser",))
        if rec is None:
            raise AuthError(401, "unknown, revoked or wrong key")
        if backfill:
            raise AuthError(403, "X-Livemetrics-Backfill is only accepted on requests signed with a server key")
        self._check_origin(rec, headers)
        return Caller(rec, False)

    def _check_origin(self, rec: KeyRecord, headers) -> None:
        """A browser key works only from the pages of its allowed origins (Origin, else Referer). This stops
        a copied key being used from another site's visitors; a non-browser client can forge both headers,
        which the rate limits per key and per client IP bound (docs/security.md, Browser keys)."""
        if not rec.origins:
            if self.dev_mode:
                return
            raise AuthError(
                403,
                f"browser key {rec.key_id} has no allowed origins: create browser keys with "
                "`livemetrics sellers add --origin https://your-shop.example` (only dev mode "
                "accepts a browser key without origins)",
            )
        origin = request_origin(headers.get("origin"), headers.get("referer"))
        if origin is None:
            raise AuthError(
                403,
                f"browser key {rec.key_id} is accepted only from its allowed origins, and this "
                "request names none (no Origin or Referer header)",
            )
        if origin not in rec.origins:
            raise AuthError(
                403, f"origin {origin} is not allowed for browser key {rec.key_id} (allowed: {', '.join(rec.origins)})"
            )

    def _verify_signed(
        self, key_id: str, ts: str | None, signature: str | None, body: bytes, backfill: bool
    ) -> KeyRecord:
        if not ts or not signature:
            raise AuthError(401, "signed request needs X-Livemetrics-Timestamp and X-Livemetrics-Signature")
        if signature.strip().startswith("v1="):  # did not cover X-Livemetrics-Backfill: a relay could add it
            raise AuthError(
                401,
                "v1 signatures are no longer accepted (they do not cover X-Livemetrics-Backfill): "
                "upgrade the livemetrics SDK, or sign " + SIGNED_AS,
            )
        try:
            ts_f = float(ts)  # unix seconds; decimals make each retry's signature unique
        except ValueError:
            raise AuthError(401, "X-Livemetrics-Timestamp must be unix seconds") from None
        now = time.time()
        if not abs(now - ts_f) <= self.tolerance_s:
            raise AuthError(
                401,
                f"stale signature: timestamp is {now - ts_f:.0f} s from the gateway's clock "
                f"(tolerance {self.tolerance_s} s)",
            )
        found = self.registry.server_secret(key_id)
        if found is None:
            raise AuthError(401, "unknown, revoked or wrong key")
        rec, secret = found
        mac = hmac.new(secret.encode(), f"{ts}.{int(backfill)}.".encode() + body, hashlib.sha256).digest()
        if not hmac.compare_digest(b"v2=" + mac.hex().encode(), signature.strip().encode()):
            raise AuthError(401, "wrong signature: expected " + SIGNED_AS)
        try:
            first = self._replay_cache(rec.key_id, now).first_time(mac, now)
        except ReplayCacheFull as exc:
            raise AuthError(
                503,
                f"key {rec.key_id} sent too many signed requests to remember within the signature window "
                f"({self.replay_max} per key); retry in {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None
        if not first:
            raise AuthError(401, "replayed signature: this signed request was already received")
        return rec
