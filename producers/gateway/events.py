"""``POST /v1/events`` as a bare ASGI app: the gateway's hot path, without FastAPI's per-request machinery.

FastAPI's request/response objects, dependency solving, router and middleware layers cost about a third
of the gateway's main thread at 100-event requests. ``GatewayApp`` (app.py) hands this path straight to
``EventsEndpoint``; everything a client can observe stays the same: statuses, JSON error bodies, headers,
CORS (the app's own ``CORSMiddleware`` decides the headers), auth, limits, rate limits. The route is still
a FastAPI route for the published OpenAPI, and reaches this same endpoint when the app is mounted under
a prefix (then behind the middleware stack, which adds CORS itself).
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qsl

import msgspec
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware

from livemetrics import metrics
from livemetrics.contract import MAX_BATCH, MAX_BODY_BYTES
from livemetrics.settings import Settings
from livemetrics.validation import BodyError, clean_batch, split_body
from producers.gateway.auth import Authenticator, AuthError, RateLimiter
from producers.gateway.client_limit import ClientLimiter
from producers.gateway.delivery import DeliveryUnavailable, KafkaDelivery
from producers.gateway.enrich import client_ip
from producers.gateway.ingest import (
    USER_AGENT_KEPT,
    ClientInfo,
    card_suspects,
    dead_letter,
    forbidden_type,
    ingest,
    parse_body,
    stored_user_agent,
)
from producers.gateway.overload import Shedder
from producers.gateway.topic_limits import TopicLimits

_json = msgspec.json.Encoder()
_CONTENT_TYPE = (b"content-type", b"application/json")
# A UTF-8 byte order mark before the JSON: RFC 8259 lets a parser ignore it, and Windows tools (PowerShell,
# Notepad) write one; it was refused as "the body must be a JSON object". Only one is ignored.
_BOM = b"\xef\xbb\xbf"

# What validation one event pays for in the rate limits. A storefront's event takes 10-50 us and holds a
# few dozen digit runs (its UUID, times, amounts); the card check walks every digit group of a text
# (livemetrics/card_numbers.py), ~2 us each, so an event made of "1 2 3 ..." strings cost tens of ms and
# still counted as one event. A request whose validation took more CPU than VALIDATION_CPU_PER_EVENT_S per
# event is charged its digit groups (Unicode digits too), DIGIT_GROUPS_PER_EVENT to an event, past what
# its events paid, after the fact: to its client IP for a browser key (the key is public: charging it let
# one client with a 1 MiB body hold every visitor of the shop back for ~25 s, past the per-IP limit that
# exists to stop one client spending the key), to its key otherwise. The CPU time only decides whether to
# count (a collector pause is no reason to charge anyone); the count is what is charged.
# What a request pays in the rate limits (per key and per client IP): its events, and at least one per
# BYTES_PER_EVENT of its body. An event may be 32 KiB and a storefront's are ~0.1-0.5 KiB as sent: counted
# by events alone, the public browser key's 200 events/s put ~6.5 MB/s of maximal events into Kafka and
# ClickHouse (kept for months, shared by every seller), ~100 times its real traffic's bytes at that rate;
# now at most ~0.8 MB/s (200 x 4 KiB), and a storefront's requests pay what they did.
# A request also counts, before its events are read by the card check in Python, as one event per
# DIGIT_GROUPS_PER_EVENT digit groups of the events that check reads (those the RE2 pre-scan flags,
# ``card_suspects``): its cost goes with them (~0.2-0.5 us a group), and an after-the-fact charge alone let a
# browser key from many client IPs spend seconds of gateway CPU per second (each IP validated once: ~100 ms per
# 32 KiB event of "1 1 1 ..."). Counted up front, what the key's rate lets through is bounded: its rate x
# DIGIT_GROUPS_PER_EVENT groups a second. The events the pre-scan passes cost no Python rule: their digits are
# not counted (a storefront's, which hold a few dozen groups each: counting every body's cost ~0.5 us an event).
BYTES_PER_EVENT = 4096
VALIDATION_CPU_PER_EVENT_S = 250e-6
DIGIT_GROUPS_PER_EVENT = 100
_DIGIT_GROUP = re.compile(r"\d+")
_DIGIT_MARKS = bytes(49 if 48 <= b <= 57 else 48 for b in range(256))  # a digit -> "1", any other byte -> "0"


def digit_groups(body: bytes, cap: int) -> int:
    """The runs of digits in ``body``: ASCII ones at C speed (a translate and two counts, ~1.5 ms a MiB); in a
    body that is not all ASCII, Unicode digits too (the card check reads them in their plain spelling), one
    by one (~0.3 us each) and only up to ``cap``: a body past what its sender has room for is refused anyway."""
    if body.isascii():
        marks = body.translate(_DIGIT_MARKS)
        return marks.count(b"01") + (marks[:1] == b"1")
    found = 0
    for _ in _DIGIT_GROUP.finditer(body.decode("utf-8", "replace")):
        found += 1
        if found >= cap:
            break
    return found


def digit_cost(raws: list[bytes], suspects: list[int], most: int) -> int:
    """What the events ``suspects`` of ``raws`` (read by the card check in Python) count as in the rate limits: one
    event per DIGIT_GROUPS_PER_EVENT of their digit groups. Exact up to ``most`` (what one request of its sender
    may count), past which it is only known to be more."""
    if not suspects:
        return 0
    read = b"\x00".join(raws[i] for i in suspects)  # a gap between events: no group runs from one into the next
    return digit_groups(read, (most + 1) * DIGIT_GROUPS_PER_EVENT) // DIGIT_GROUPS_PER_EVENT


def split_counted(body: bytes, most: int) -> tuple[list[bytes], list[int], int]:
    """A body split (``split_body``), the events the card check reads in Python (``card_suspects``), and what it
    counts as in the rate limits before they are read, at least: one event per BYTES_PER_EVENT bytes and per
    DIGIT_GROUPS_PER_EVENT digit groups of those events (``digit_cost``), at least one."""
    raws = split_body(body)
    suspects = card_suspects(raws)
    return raws, suspects, max(1, len(body) // BYTES_PER_EVENT, digit_cost(raws, suspects, most))


def least_cost(body: bytes, most: int) -> int:
    """What ``split_counted`` says a body counts as."""
    return split_counted(body, most)[2]


class _Disconnected(Exception):
    """The client went away before its body was read: nothing to answer."""


class _TooLarge(Exception):
    pass


class _Reply(Exception):
    """An early answer (401, 413, 422, 429): raised from the steps, sent once by ``__call__``."""

    def __init__(self, status: int, payload: dict, headers: list[tuple[bytes, bytes]] | None = None):
        self.status, self.payload, self.headers = status, payload, headers or []


def _error(status: int, message: str, **extra) -> _Reply:
    return _Reply(status, {"error": message, **extra})


class EventsEndpoint:
    """One per app; ``state`` is the app's state (auth, delivery), filled in by the lifespan."""

    def __init__(
        self,
        settings: Settings,
        state,
        limiter: RateLimiter,
        cors: CORSMiddleware | None,
        client_limiter: ClientLimiter | None = None,
        shedder: Shedder | None = None,
    ):
        self.settings = settings
        # overload protection (overload.py); off without one (a bare endpoint in unit tests)
        self.shedder = shedder or Shedder(lambda: None, high=0, low=0, share=1, window_s=1, stalled_s=1, stale_s=1)
        self.state = state
        self.limiter = limiter
        # A key without its own rate gets its kind's default: browser keys are public, so far lower.
        self.default_rates = {"browser": settings.browser_rate_per_s, "server": settings.gateway_rate_per_s}
        self.client_limiter = client_limiter or ClientLimiter(settings.client_ip_rate_per_s)
        self.cors = cors  # None when CORSMiddleware wraps this endpoint already
        self.dead_letter_topic = settings.topic("dead-letter")

    async def __call__(self, scope, receive, send) -> None:
        headers = Headers(scope=scope)
        try:
            status, payload, extra = await self._handle(scope, receive, headers)
        except _Reply as r:
            status, payload, extra = r.status, r.payload, r.headers
        except _Disconnected:
            return
        body = _json.encode(payload)
        start = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", b"%d" % len(body)), _CONTENT_TYPE, *extra],
        }
        if self.cors is not None:
            # The very code the middleware runs on every response: same headers, by construction.
            await self.cors.send(start, send=send, request_headers=headers)
        else:
            await send(start)
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope, receive, headers: Headers) -> tuple[int, dict, list]:
        body = await _read_limited(receive, headers, MAX_BODY_BYTES)
        auth: Authenticator = self.state.auth
        qs = scope.get("query_string") or b""
        query = dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)) if qs else {}
        try:
            caller = auth.caller(headers, query, body)
        except AuthError as exc:
            if exc.retry_after:  # 503: the replay cache is full, or the keys are not read yet (nothing accepted)
                raise _Reply(
                    exc.status, {"error": str(exc), "accepted": 0}, [(b"retry-after", str(exc.retry_after).encode())]
                ) from None
            raise _error(exc.status, str(exc)) from None
        if body[:3] == _BOM:  # after the signature check, which covers the bytes as sent
            body = body[3:]
        rec = caller.record
        rate = rec.rate_per_s or self.default_rates[rec.kind]
        now = time.monotonic()
        parsed = raws = suspects = None
        peer = scope.get("client")
        ip = client_ip(peer[0] if peer else None, headers.get("x-forwarded-for"), self.settings.trusted_proxies)
        browser = rec.kind == "browser"
        key_room = self.limiter.room(rec.key_id, rate, now)
        limited = browser and self.client_limiter.enabled
        client_room = self.client_limiter.room(ip, now) if limited else float(MAX_BATCH)
        # A request pays at least one event per BYTES_PER_EVENT of its body: when its client or key has less
        # room than that (a hint; ``refusal`` decides, changing nothing), it is refused before its body is
        # even split. (Before, a refused body was split first: 2-22 ms of CPU a MiB, uncharged, per 429.)
        # Its Retry-After is for what it likely costs: its `"event_id"`s counted (a valid event has one; a
        # byte search, ~0.5 ms a MiB against 1-2.5 for a split here), at most a batch, never less than its bytes' worth.
        least = max(1, len(body) // BYTES_PER_EVENT)
        shedder = self.shedder
        admitted = False  # counted by the overload policy already (below, a seller being refused)
        if shedder.enabled and shedder.refusing(rec.seller_id):
            # A seller refused for overload is counted and answered before its body is split, as below.
            admitted = True
            likely = max(least, min(MAX_BATCH, body.count(b'"event_id"')))
            if wait := shedder.admit(rec.seller_id, likely, now):
                raise self._shed(rec.seller_id, likely, wait)
        if (limited and client_room < least) or key_room < least:
            ids = min(MAX_BATCH, body.count(b'"event_id"'))
            likely, sized = max(least, ids), _counted(least) if least > ids else ""
            if limited and client_room < least and self.client_limiter.refusal(ip, least, now):
                wait = self.client_limiter.refusal(ip, likely, now)
                raise _rate_limited(likely, wait, f"{self._client_over(ip)}{sized}")
            if key_room < least and self.limiter.refusal(rec.key_id, rate, least, now):
                wait = self.limiter.refusal(rec.key_id, rate, likely, now)
                raise _rate_limited(likely, wait, f"{self._key_over(rec.key_id, rate)}{sized}")
        cpu = time.thread_time()  # validation (below, split and parse) runs on this thread, awaiting nothing
        try:
            # With room for the largest batch, a clean batch is decoded at once, straight from the body (no
            # card rule reads it). Any other body, and any body of a key short of that room, a browser client
            # short of it (the per-IP limit), or a seller being refused for overload (overload.py), is counted
            # first, so that a refusal costs no validation and the card check's Python rules are paid before
            # they run. (Before, the client's room was not asked: a client over its limit had each body
            # validated, up to ~100 ms of CPU a MiB, uncharged, before its 429; and a key with room for a
            # batch had any body validated at once, its digit groups charged only after the fact: ~2 s of CPU
            # for 1 MiB of "1 1 1 ...", whatever its rate.)
            if key_room >= MAX_BATCH and client_room >= MAX_BATCH and not self.shedder.refusing(rec.seller_id):
                parsed = clean_batch(body)
            if parsed is None:
                # One request counts at most a batch, whatever its key's rate: its validation then holds this
                # process's loop (every seller's requests) for at most ~125 ms (250 us a counted event). Before,
                # a key's burst allowed more (2 x its rate): a server key at the default 20,000/s could send
                # 1 MiB of digit groups, ~5,000 counted events, ~2 s of the loop in one request. A body that
                # counts more is no ordinary batch (its bytes count 256 at most; only events the pre-scan
                # flags count digit groups), and is told to send smaller requests.
                most = MAX_BATCH
                raws, suspects, least = split_counted(body, most)
                if least > most:
                    metrics.EVENTS_REJECTED.labels("oversize").inc()
                    raise _error(
                        413,
                        f"this request counts as more than {most} events (one per {BYTES_PER_EVENT} bytes of body "
                        f"and one per {DIGIT_GROUPS_PER_EVENT} digit groups of the events the card check reads), "
                        f"the most one request may count: send its events in smaller requests",
                    )
        except BodyError as exc:
            metrics.EVENTS_REJECTED.labels("body").inc()
            raise _error(exc.status, str(exc)) from None
        except RecursionError:  # msgspec's depth limit, met while splitting the body (was a 500)
            metrics.EVENTS_REJECTED.labels("body").inc()
            raise _error(422, "malformed JSON: nested too deeply") from None
        n = len(parsed if parsed is not None else raws)
        cost = max(n, least)  # what the request pays in the rate limits
        sized = _counted(cost) if cost > n else ""
        # Live processing behind: the sellers far over their share are refused first, before they spend any
        # rate-limit room (a dict update per request when nothing is behind).
        if shedder.enabled and not admitted:
            wait = shedder.admit(rec.seller_id, n, now)
            if wait:
                raise self._shed(rec.seller_id, n, wait)
        # The client's own limit first: a refused client spends none of the key's room (other visitors').
        if browser and self.client_limiter.enabled:
            wait = self.client_limiter.take(ip, cost, now)
            if wait:
                raise _rate_limited(n, wait, f"{self._client_over(ip)}{sized}")
        wait = self.limiter.take(rec.key_id, rate, cost, now)
        if wait:
            raise _rate_limited(n, wait, f"{self._key_over(rec.key_id, rate)}{sized}")
        if parsed is None:
            parsed = parse_body(body, raws, suspects)
        user_agent = headers.get("user-agent", "")
        stored_user_agent(user_agent)  # its card check (cached for ingest's tail), charged with the body's
        self._charge_validation(
            rec.key_id, rate, ip if browser else None, body, time.thread_time() - cpu, cost, user_agent
        )
        if rec.event_types:
            refused = forbidden_type(parsed, rec.event_types)
            if refused is not None:
                raise _error(
                    403, f"key {rec.key_id} may not send `{refused}` events (allowed: {', '.join(rec.event_types)})"
                )
        client = ClientInfo(
            seller_id=rec.seller_id,
            ip=ip,
            user_agent=user_agent,
            backfill=caller.backfill,
            source="browser" if browser else "server",
        )
        limits: TopicLimits = self.state.topic_limits
        result = ingest(body, client, self.settings, parsed, salts=self.state.ip_salts, limits=limits)
        # The decoded events are in ``result`` now. Held over the wait for the broker below, they would
        # outlive young-generation collections and make the cyclic GC rescan the whole heap, often.
        parsed = raws = None
        delivery: KafkaDelivery = self.state.delivery
        rejected = []
        if result.rejected:
            now = time.time_ns() // 1_000_000
            for rej in result.rejected:
                metrics.EVENTS_REJECTED.labels(rej.reason).inc()
                delivery.send_soon(self.dead_letter_topic, rec.seller_id.encode(), dead_letter(rej, client, now))
            rejected = [{"index": r.index, "error": r.error} for r in result.rejected]
        accepted = len(result.records)
        if not accepted:
            return 422, {"accepted": 0, "rejected": rejected, "error": rejected[0]["error"]}, []
        try:
            await delivery.send(result.records, accepted)
        except DeliveryUnavailable as exc:
            metrics.DELIVERY_FAILURES.inc()
            if "size too large" in str(exc).lower():  # a topic's limit lowered since it was last read
                limits.refresh_soon()
            return (
                503,
                {"error": f"events could not be made durable, retry later: {exc}", "accepted": 0},
                [(b"retry-after", b"5")],
            )
        metrics.EVENTS_ACCEPTED.labels("all").inc(accepted)
        return 202, {"accepted": accepted, "rejected": rejected}, []

    def _shed(self, seller_id: str, n: int, wait: int) -> _Reply:
        """The 429 of a seller refused for overload (overload.py)."""
        metrics.EVENTS_REJECTED.labels("overload").inc(n)
        metrics.OVERLOAD_REFUSED.inc(n)
        why = self.shedder.why(seller_id, wait)
        return _Reply(429, {"error": why, "accepted": 0}, [(b"retry-after", str(wait).encode())])

    def _client_over(self, ip: str | None) -> str:
        return f"client IP {ip} is over the per-client limit of browser-key traffic ({self.client_limiter.rate:g} events/s)"

    @staticmethod
    def _key_over(key_id: str, rate: float) -> str:
        return f"key {key_id} is over its rate limit ({rate:g} events/s)"

    def _charge_validation(
        self, key_id: str, rate: float, ip: str | None, body: bytes, spent_s: float, n: int, user_agent: str = ""
    ) -> None:
        """Charge the browser client's IP, or the key, for validation past the ``n`` events' worth its request
        paid (the body's and the User-Agent header's card checks)."""
        if spent_s <= n * VALIDATION_CPU_PER_EVENT_S:
            return
        groups = digit_groups(body, len(body) + 1)  # every one: a body has fewer groups than bytes
        groups += sum(1 for _ in _DIGIT_GROUP.finditer(user_agent[:USER_AGENT_KEPT]))
        extra = groups / DIGIT_GROUPS_PER_EVENT - n
        if extra <= 0:
            return
        now = time.monotonic()
        if ip is not None and self.client_limiter.enabled:
            self.client_limiter.charge(ip, extra, now)
            payer = "client_ip"
        else:  # a server key (its holder sent it), or browser keys without a per-IP limit
            self.limiter.charge(key_id, rate, extra, now)
            payer = "key"
        metrics.VALIDATION_CHARGED.labels(payer).inc()
        metrics.VALIDATION_CHARGED_EVENTS.labels(payer).inc(extra)


async def _read_limited(receive, headers: Headers, limit: int) -> bytes:
    """The body, counting the bytes actually received (Content-Length is only a hint); 413 above ``limit``."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _counted(cost: int) -> str:
    """What a request's size makes it count as, for its 429's message."""
    return (
        f" (this request counts as {cost} events: one per {BYTES_PER_EVENT} bytes of body and one per "
        f"{DIGIT_GROUPS_PER_EVENT} digit groups of the events the card check reads, when that is more than its "
        "events)"
    )


def _rate_limited(n: int, wait: int, why: str) -> _Reply:
    metrics.EVENTS_REJECTED.labels("rate_limited").inc(n)
    return _Reply(429, {"error": f"{why}; retry in {wait} s", "accepted": 0}, [(b"retry-after", str(wait).encode())])


def _too_large() -> _Reply:
    metrics.EVENTS_REJECTED.labels("oversize").inc()
    return _error(413, f"body over the limit of {MAX_BODY_BYTES} bytes")
