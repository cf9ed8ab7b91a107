"""Who is sending: browser keys (bearer), server keys (HMAC-signed, replay-proof), per-key rate limits.

Pure of HTTP: the app passes headers in and maps ``AuthError`` to its status code.

A gateway of several processes on one port (``gateway_workers``, workers.py) shares its rate-limit buckets
and the signatures it has seen through ``SharedState`` (``livemetrics/shared_table.py``): a key gets its
rate once, not once per process, and a signed request is accepted once by the gateway, not once by each
of its processes. Where the shared table has no room (every slot of a key's probes busy), a process uses
its own state, as a gateway of one process does (said in the log, at most once a minute).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from livemetrics.contract import MAX_BATCH
from livemetrics.keys import KeyRecord, KeyRegistry
from livemetrics.once_per import OncePer
from livemetrics.origins import request_origin
from livemetrics.shared_table import SharedTable

log = logging.getLogger("livemetrics.gateway")

KEY_ID = "x-livemetrics-key-id"
TIMESTAMP = "x-livemetrics-timestamp"
SIGNATURE = "x-livemetrics-signature"
BACKFILL = "x-livemetrics-backfill"
SIGNED_AS = (
    'v2=HMAC-SHA256(secret, "<timestamp>.<backfill>." + body) in hex, <backfill> 1 when '
    "X-Livemetrics-Backfill is sent, else 0"
)


BUCKET_SLOTS = 1 << 18  # keys and client IPs with a bucket not refilled yet (~10 s each at 50/s): 10 MB
_full_said = OncePer(60.0, time.monotonic)


class SharedState:
    """What the processes of one gateway share (made by its supervisor, handed to each process at its
    spawn): rate-limit buckets (free from when they are full again, tokens, last refill) and the signatures
    seen (free from the end of their window)."""

    def __init__(self, signature_slots: int, bucket_slots: int = BUCKET_SLOTS, processes: int = 1):
        self.buckets = SharedTable(bucket_slots, 3)
        self.signatures = SharedTable(signature_slots, 1) if signature_slots > 0 else None
        # A key's share of the signatures, per process: past it, that key's signatures are checked by the
        # process alone, so that one key signing as fast as it can fills at most an eighth of the table and
        # every other key keeps the check across processes. (A seller sending 20,000 events/s in batches
        # of 500 has 24,000 signatures in a 600-s window: far under the default 131,072 / processes.)
        self.key_share = max(1000, signature_slots // (8 * max(1, processes)))


# The supervisor's shared state, set in each of its worker processes at their start (workers.py) before the
# app is made; None in a gateway of one process.
SHARED: SharedState | None = None


def _no_room(what: str) -> None:
    if _full_said.due(what):
        log.warning(
            "the gateway's shared %s table has no room: this process uses its own for what does not fit "
            "(limits per process; said at most once a minute)",
            what,
        )


KEYS_NOT_READ_RETRY_S = 5


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

    def __len__(self) -> int:
        return len(self._seen)

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


def _take(b: list[float], rate: float, n: int, now: float) -> int:
    """``RateLimiter.take`` on the bucket ``b`` ([tokens, last refill], mutated)."""
    b[0] = min(max(rate * 2, n), b[0] + (now - b[1]) * rate)
    b[1] = now
    if b[0] >= n:
        b[0] -= n
        return 0
    return max(1, math.ceil((n - b[0]) / rate))


def _charge(b: list[float], rate: float, n: float, now: float) -> None:
    b[0] = min(rate * 2, b[0] + (now - b[1]) * rate) - n
    b[1] = now


class RateLimiter:
    """A token bucket per key, in events per second, with a burst of two seconds' worth.

    In a gateway of several processes (``SHARED``) the buckets are the gateway's, in shared memory; a
    bucket full again (``max(2 s, MAX_BATCH)`` worth: it answers as a new one would) frees its slot."""

    def __init__(self, default_rate: float, namespace: str = "key", shared: SharedTable | None = None):
        self.default_rate = default_rate
        self._buckets: dict[str, list[float]] = {}  # key_id -> [tokens, last refill]
        self.shared = shared if shared is not None else (SHARED.buckets if SHARED is not None else None)
        if self.shared is not None:
            table, prefix = self.shared, namespace.encode() + b"\0"
            self._digest = lru_cache(maxsize=65536)(lambda key: table.digest(prefix + key.encode()))

    def room(self, key_id: str, rate: float, now: float) -> float:
        """About how many events could pass now (``take`` decides)."""
        rate = rate or self.default_rate
        if self.shared is not None:
            got = self.shared.find(self._digest(key_id))
            if got is not None:
                return min(rate * 2, got[1] + (now - got[2]) * rate)
        b = self._buckets.get(key_id)
        return rate * 2 if b is None else min(rate * 2, b[0] + (now - b[1]) * rate)

    def refusal(self, key_id: str, rate: float, n: int, now: float) -> int:
        """What ``take`` would answer for ``n`` events now, changing nothing: 0 when they would pass, else
        the seconds to wait (a refusing ``take`` only refills the bucket, which a later one does alike)."""
        rate = rate or self.default_rate
        if self.shared is not None:  # under the table's lock (``find`` is a hint), the bucket written back as read
            wait = self._in_shared(
                self.shared, key_id, rate, max(rate * 2, n), now, lambda b: _take(b[:], rate, n, now)
            )
            if wait is not None:
                return wait
        b = self._buckets.get(key_id)
        return 0 if b is None else _take(b[:], rate, n, now)  # a new bucket holds ``max(2 s, n)``: they pass

    def take(self, key_id: str, rate: float, n: int, now: float) -> int:
        """0 when ``n`` events may pass, else the whole seconds to wait before trying again."""
        rate = rate or self.default_rate
        if self.shared is not None:
            wait = self._in_shared(self.shared, key_id, rate, max(rate * 2, n), now, lambda b: _take(b, rate, n, now))
            if wait is not None:
                return wait
        b = self._buckets.get(key_id)
        if b is None:
            b = self._buckets[key_id] = [max(rate * 2, n), now]
        return _take(b, rate, n, now)

    def charge(self, key_id: str, rate: float, n: float, now: float) -> None:
        """Spend ``n`` more events' worth after the fact (work already done): the bucket may go below zero,
        and the key then waits until it has refilled that far."""
        rate = rate or self.default_rate
        if self.shared is not None:

            def charged(b: list[float]) -> int:
                _charge(b, rate, n, now)
                return 0

            if self._in_shared(self.shared, key_id, rate, rate * 2, now, charged) is not None:
                return
        b = self._buckets.get(key_id)
        if b is None:
            b = self._buckets[key_id] = [rate * 2, now]
        _charge(b, rate, n, now)

    def _in_shared(
        self,
        table: SharedTable,
        key_id: str,
        rate: float,
        fresh: float,
        now: float,
        change: Callable[[list[float]], int],
    ) -> int | None:
        """``change`` applied to ``key_id``'s bucket in the shared table (a new one holds ``fresh`` tokens)
        and its answer; None when the table has no room for the key (logged): the caller uses its own."""
        digest = self._digest(key_id)
        table.lock()
        try:
            got = table.claim(digest, now)
            if got is not None:
                offset, values = got
                bucket = [fresh, now] if values is None else [values[1], values[2]]
                answer = change(bucket)
                table.put(offset, digest, self._free_at(bucket, rate), bucket[0], bucket[1])
                return answer
        finally:
            table.unlock()
        _no_room("rate-limit")
        return None

    @staticmethod
    def _free_at(b: list[float], rate: float) -> float:
        """When the bucket holds ``max(2 s, MAX_BATCH)`` again: from then on it answers as a new one."""
        return b[1] + (max(rate * 2, MAX_BATCH) - b[0]) / rate


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
        # A gateway of several processes: the signatures all of them have seen (a request replayed to
        # another process of the same gateway is refused too).
        self.shared = SHARED.signatures if SHARED is not None else None
        self.key_share = SHARED.key_share if SHARED is not None else 0

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
            raise self._unknown()
        if backfill:
            raise AuthError(403, "X-Livemetrics-Backfill is only accepted on requests signed with a server key")
        self._check_origin(rec, headers)
        return Caller(rec, False)

    def _unknown(self) -> AuthError:
        """A key not found: 401, unless the keys are not read yet (a gateway started while Kafka is away),
        when nothing can be told of any key: 503 with Retry-After. (It answered 401 "unknown key" then,
        which the trackers and the SDK take as final: a shop's valid key refused, its events dropped.)"""
        if not getattr(self.registry, "ready", True):
            return AuthError(
                503,
                "the gateway has not read its keys yet (Kafka unreachable, or starting): nothing was accepted, "
                "retry later",
                retry_after=KEYS_NOT_READ_RETRY_S,
            )
        return AuthError(401, "unknown, revoked or wrong key")

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
            raise self._unknown()
        rec, secret = found
        mac = hmac.new(secret.encode(), f"{ts}.{int(backfill)}.".encode() + body, hashlib.sha256).digest()
        if not hmac.compare_digest(b"v2=" + mac.hex().encode(), signature.strip().encode()):
            raise AuthError(401, "wrong signature: expected " + SIGNED_AS)
        cache = self._replay_cache(rec.key_id, now)
        try:
            first = cache.first_time(mac, now)
        except ReplayCacheFull as exc:
            raise AuthError(
                503,
                f"key {rec.key_id} sent too many signed requests to remember within the signature window "
                f"({self.replay_max} per key); retry in {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None
        if first and self.shared is not None:
            if len(cache) <= self.key_share:
                first = self._first_in_gateway(mac, now)
            else:
                _no_room(f"signature (key {rec.key_id} is over its share of {self.key_share} per process)")
        if not first:
            raise AuthError(401, "replayed signature: this signed request was already received")
        return rec

    def _first_in_gateway(self, mac: bytes, now: float) -> bool:
        """False when another process of this gateway received this signature within its window. With no
        room in the shared table, this process's own cache (already asked) decides."""
        table = self.shared
        assert table is not None
        digest = table.digest(mac)
        table.lock()
        try:
            got = table.claim(digest, now)
            if got is not None:
                offset, values = got
                if values is not None and values[0] > now:
                    return False
                table.put(offset, digest, now + 2 * self.tolerance_s)
                return True
        finally:
            table.unlock()
        _no_room("signature")
        return True
