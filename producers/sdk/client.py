"""The server SDK: signed, batched, retried event delivery that never holds a shop's request for long.

``Client`` (sync) and ``AsyncClient`` share everything but the transport. Every call is bounded by
``timeout`` seconds in total, retries included; a retry resends the *same* events (same ``event_id``),
which de-duplication downstream makes safe.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable

import httpx
import msgspec

from livemetrics.contract import MAX_BATCH
from livemetrics.keys import sign, split_key

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_json = msgspec.json.Encoder()
# An amount: a Decimal or a decimal string ("59.90") is sent exactly; a float is sent as its shortest repr.
Amount = Decimal | str | float


class KeyRefused(RuntimeError):
    """The gateway refused the key or signature (401/403): retrying cannot help."""


@dataclass
class SendResult:
    accepted: int = 0
    rejected: list[dict] = field(default_factory=list)  # [{"index", "error"}] over all events sent
    failed: int = 0  # events not confirmed in time (safe to send again: same event ids)

    def merge(self, other: "SendResult", offset: int) -> None:
        self.accepted += other.accepted
        self.failed += other.failed
        self.rejected += [{"index": r["index"] + offset, "error": r["error"]} for r in other.rejected]


def complete(event: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``event_id`` and ``ts`` once, so that every retry sends the same event."""
    event.setdefault("event_id", str(uuid.uuid4()))
    event.setdefault("ts", int(time.time() * 1000))
    return event


class _Base:
    def __init__(self, url: str, key: str, timeout: float = 2.0, backfill: bool = False, max_retries: int = 4):
        parts = split_key(key)
        if parts is None or parts[0] not in ("pk", "sk"):
            raise ValueError("key must be a browser key (lm_pk_...) or a server key (lm_sk_...)")
        self.endpoint = url.rstrip("/") + "/v1/events"
        self._kind, self._key_id, self._secret = parts
        self._key = key
        self.timeout = timeout
        self.backfill = backfill
        self.max_retries = max_retries
        self._pending: list[dict] = []
        if backfill and self._kind != "sk":
            raise ValueError("backfill needs a server key")

    def headers(self, body: bytes, backfill: bool) -> dict[str, str]:
        h = {"Content-Type": "application/json", "User-Agent": "livemetrics-sdk/1"}
        if self._kind == "sk":
            ts = f"{time.time():.3f}"  # milliseconds: a retry never repeats a signature (replays are refused)
            h.update({"X-Livemetrics-Key-Id": self._key_id, "X-Livemetrics-Timestamp": ts,
                      "X-Livemetrics-Signature": sign(self._secret, ts, body, backfill)})
        else:
            h["Authorization"] = f"Bearer {self._key}"
        if backfill:
            h["X-Livemetrics-Backfill"] = "1"
        return h

    @staticmethod
    def batches(events: list[dict]) -> Iterable[tuple[int, bytes]]:
        for i in range(0, len(events), MAX_BATCH):
            yield i, _json.encode({"events": events[i:i + MAX_BATCH]})

    @staticmethod
    def outcome(resp: httpx.Response, n: int) -> SendResult | None:
        """The result of a response, or None when it should be retried."""
        if resp.status_code in (401, 403):
            raise KeyRefused(f"{resp.status_code}: {resp.text}")
        if resp.status_code in RETRY_STATUSES:
            return None
        body = resp.json()
        if resp.status_code == 413:  # a single event too large for a body: every event of it is rejected
            return SendResult(rejected=[{"index": i, "error": body.get("error", "")} for i in range(n)])
        return SendResult(accepted=body.get("accepted", 0), rejected=body.get("rejected", []))

    @staticmethod
    def backoff(resp: httpx.Response | None, attempt: int) -> float:
        after = resp.headers.get("Retry-After") if resp is not None else None
        base = float(after) if after and after.isdigit() else 0.1 * 2 ** attempt
        return base * (0.8 + random.random() * 0.4)

    # --- event builders: a dict of the contract; send() or add() it ------------------------------
    @staticmethod
    def event(type_: str, session_id: str, **fields: Any) -> dict[str, Any]:
        return complete({"type": type_, "session_id": session_id, **{k: v for k, v in fields.items() if v is not None}})

    def _payment(self, type_: str, session_id: str, method: str, amount: Amount, currency: str, order_id: str,
                 customer: dict | None = None, items: list | None = None, **failure: Any) -> dict:
        pay = {"method": method, "amount": amount, "currency": currency, "order_id": order_id,
               **{k: v for k, v in failure.items() if v is not None}}
        if items is not None:
            pay["items"] = items
        return self.event(type_, session_id, payment=pay, customer=customer)

    def add(self, event: dict[str, Any]) -> None:
        """Queue an event for the next ``flush()``."""
        self._pending.append(complete(event))


class Client(_Base):
    """Synchronous client (e.g. in a Django or Flask view)."""

    def __init__(self, url: str, key: str, timeout: float = 2.0, **kw: Any):
        super().__init__(url, key, timeout, **kw)
        self._http = httpx.Client(timeout=timeout)

    def send(self, events: list[dict], backfill: bool | None = None) -> SendResult:
        """Send events now, in batches of up to 500; never longer than ``timeout`` seconds in all."""
        events = [complete(e) for e in events]
        backfill = self.backfill if backfill is None else backfill
        deadline = time.monotonic() + self.timeout
        total = SendResult()
        for offset, body in self.batches(events):
            n = min(MAX_BATCH, len(events) - offset)
            total.merge(self._post(body, n, backfill, deadline), offset)
        return total

    def _post(self, body: bytes, n: int, backfill: bool, deadline: float) -> SendResult:
        for attempt in range(self.max_retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            resp = None
            try:
                resp = self._http.post(self.endpoint, content=body, headers=self.headers(body, backfill), timeout=left)
                result = self.outcome(resp, n)
                if result is not None:
                    return result
            except httpx.HTTPError:
                pass
            time.sleep(min(self.backoff(resp, attempt), max(0.0, deadline - time.monotonic())))
        return SendResult(failed=n)

    def flush(self) -> SendResult:
        pending, self._pending = self._pending, []
        return self.send(pending) if pending else SendResult()

    def page_view(self, session_id: str, page: dict, **kw: Any) -> SendResult:
        return self.send([self.event("page_view", session_id, page=page, **kw)])

    def checkout_started(self, session_id: str, items: list, total: Amount, currency: str, customer: dict | None = None) -> SendResult:
        return self.send([self.event("checkout_started", session_id, customer=customer,
                                     checkout={"items": items, "total": total, "currency": currency})])

    def payment_started(self, session_id: str, **kw: Any) -> SendResult:
        return self.send([self._payment("payment_started", session_id, **kw)])

    def payment_succeeded(self, session_id: str, **kw: Any) -> SendResult:
        return self.send([self._payment("payment_succeeded", session_id, **kw)])

    def payment_failed(self, session_id: str, *, error_code: str, error_message: str | None = None,
                       details: dict | None = None, **kw: Any) -> SendResult:
        return self.send([self._payment("payment_failed", session_id, error_code=error_code,
                                        error_message=error_message, details=details, **kw)])

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncClient(_Base):
    """asyncio client (e.g. in a FastAPI or aiohttp shop)."""

    def __init__(self, url: str, key: str, timeout: float = 2.0, **kw: Any):
        super().__init__(url, key, timeout, **kw)
        self._http = httpx.AsyncClient(timeout=timeout)

    async def send(self, events: list[dict], backfill: bool | None = None) -> SendResult:
        """Send events now, in batches of up to 500; never longer than ``timeout`` seconds in all."""
        events = [complete(e) for e in events]
        backfill = self.backfill if backfill is None else backfill
        deadline = time.monotonic() + self.timeout
        total = SendResult()
        for offset, body in self.batches(events):
            n = min(MAX_BATCH, len(events) - offset)
            total.merge(await self._post(body, n, backfill, deadline), offset)
        return total

    async def _post(self, body: bytes, n: int, backfill: bool, deadline: float) -> SendResult:
        for attempt in range(self.max_retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            resp = None
            try:
                resp = await self._http.post(self.endpoint, content=body, headers=self.headers(body, backfill), timeout=left)
                result = self.outcome(resp, n)
                if result is not None:
                    return result
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(self.backoff(resp, attempt), max(0.0, deadline - time.monotonic())))
        return SendResult(failed=n)

    async def flush(self) -> SendResult:
        pending, self._pending = self._pending, []
        return await self.send(pending) if pending else SendResult()

    async def page_view(self, session_id: str, page: dict, **kw: Any) -> SendResult:
        return await self.send([self.event("page_view", session_id, page=page, **kw)])

    async def checkout_started(self, session_id: str, items: list, total: Amount, currency: str, customer: dict | None = None) -> SendResult:
        return await self.send([self.event("checkout_started", session_id, customer=customer,
                                           checkout={"items": items, "total": total, "currency": currency})])

    async def payment_started(self, session_id: str, **kw: Any) -> SendResult:
        return await self.send([self._payment("payment_started", session_id, **kw)])

    async def payment_succeeded(self, session_id: str, **kw: Any) -> SendResult:
        return await self.send([self._payment("payment_succeeded", session_id, **kw)])

    async def payment_failed(self, session_id: str, *, error_code: str, error_message: str | None = None,
                             details: dict | None = None, **kw: Any) -> SendResult:
        return await self.send([self._payment("payment_failed", session_id, error_code=error_code,
                                              error_message=error_message, details=details, **kw)])

    async def aclose(self) -> None:
        try:
            await self.flush()
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
