"""The request side without I/O: events to JSON bodies within the gateway's limits, an answer to a result
or a retry, and when to retry. ``Client`` and ``AsyncClient`` only add the transport."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Optional

import httpx

from livemetrics_sdk.errors import GatewayError, KeyRefused
from livemetrics_sdk.events import MAX_BATCH, MAX_BODY_BYTES

# 429 (over a rate: Retry-After says when) and 5xx (503: Kafka could not confirm delivery) are worth a
# retry with the same event ids; de-duplication by event_id downstream makes a repeat harmless.
BASE_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
_ENVELOPE = len(b'{"events":[]}')


@dataclass
class SendResult:
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # [{"index", "error"}]: index in the call's list
    failed: int = 0  # not confirmed within the call's timeout: safe to send again (the same event ids)
    attempts: int = 0  # HTTP requests made, retries included
    error: Optional[str] = None  # why ``failed`` events failed: the last answer or network error

    def merge(self, other: SendResult, indexes: Sequence[int]) -> None:
        """Add a batch's result; ``indexes[i]`` is the call-level index of the batch's event ``i``."""
        self.accepted += other.accepted
        self.failed += other.failed
        self.attempts += other.attempts
        self.error = other.error or self.error
        self.rejected += [{"index": indexes[r["index"]], "error": r["error"]} for r in other.rejected]
        self.rejected.sort(key=lambda r: r["index"])


def complete(event: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``event_id`` and ``ts`` once, in the caller's dict: every retry, and a later send of the same
    dict, carries the same id (so the gateway's downstream counts it once)."""
    event.setdefault("event_id", str(uuid.uuid4()))
    event.setdefault("ts", int(time.time() * 1000))
    return event


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"an amount must be a finite decimal, not {value}")
        return format(value, "f")  # plain notation: "1000", never "1E+3"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a datetime needs a time zone (datetime.now(timezone.utc))")
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"a {type(value).__name__} cannot be sent as JSON")


def encode_event(event: Any) -> bytes:
    """One event's JSON; a ValueError naming what cannot be sent (NaN, a naive datetime, an object)."""
    if not isinstance(event, dict):
        raise ValueError(f"an event is a dict, not a {type(event).__name__}")
    try:
        return json.dumps(
            event, default=_json_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as e:
        raise ValueError(f"not sendable as JSON: {e}") from None


@dataclass
class Batch:
    indexes: list[int]  # the call-level index of each event in the body
    body: bytes


def pack(events: Sequence[Any]) -> tuple[list[Batch], list[dict[str, Any]]]:
    """Bodies of at most MAX_BATCH events and MAX_BODY_BYTES, in order, and the events that cannot be sent
    at all (with the reason), so that one bad event never holds back the others."""
    batches: list[Batch] = []
    refused: list[dict[str, Any]] = []
    parts: list[bytes] = []
    indexes: list[int] = []
    size = _ENVELOPE

    def close() -> None:
        if parts:
            batches.append(Batch(list(indexes), b'{"events":[' + b",".join(parts) + b"]}"))
            parts.clear()
            indexes.clear()

    for i, event in enumerate(events):
        try:
            data = encode_event(event)
        except ValueError as e:
            refused.append({"index": i, "error": str(e)})
            continue
        if _ENVELOPE + len(data) > MAX_BODY_BYTES:
            refused.append(
                {
                    "index": i,
                    "error": f"the event is {len(data)} bytes of JSON: over the gateway's "
                    f"limit of {MAX_BODY_BYTES} bytes for a request",
                }
            )
            continue
        if len(parts) == MAX_BATCH or size + len(data) + 1 > MAX_BODY_BYTES:
            close()
            size = _ENVELOPE
        parts.append(data)
        indexes.append(i)
        size += len(data) + 1
    close()
    return batches, refused


def error_text(resp: httpx.Response) -> str:
    """What the gateway said: its JSON ``error``, else the start of the body, else the reason phrase."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return resp.text[:300].strip() or resp.reason_phrase


def outcome(resp: httpx.Response, n: int) -> Optional[SendResult]:
    """The result of the answer to a body of ``n`` events; None: retry it; KeyRefused/GatewayError: stop."""
    status = resp.status_code
    if status == 429 or status >= 500:
        return None
    if status in (401, 403):
        raise KeyRefused(status, error_text(resp))
    if status in (413, 422):  # nothing of it accepted: each event is rejected (422 names each one's error)
        body = _json_or_none(resp)
        named = body.get("rejected") if isinstance(body, dict) else None
        if isinstance(named, list) and named:
            return SendResult(rejected=[{"index": r["index"], "error": r["error"]} for r in named])
        return SendResult(rejected=[{"index": i, "error": error_text(resp)} for i in range(n)])
    body = _json_or_none(resp)
    if 200 <= status < 300 and isinstance(body, dict) and "accepted" in body:
        return SendResult(accepted=int(body["accepted"]), rejected=list(body.get("rejected") or []))
    raise GatewayError(
        status, error_text(resp) if status >= 300 else f"not a livemetrics gateway's answer: {resp.text[:200]!r}"
    )


def _json_or_none(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def parse_retry_after(value: Optional[str], now: Callable[[], float] = time.time) -> Optional[float]:
    """Retry-After as seconds (a number of seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_delay(attempt: int, retry_after: Optional[float], rnd: Callable[[], float] = random.random) -> float:
    """Seconds before try ``attempt + 1``: exponential backoff with jitter (half of it random, so that many
    clients refused at once do not come back at once), never sooner than the gateway's Retry-After."""
    backoff: float = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2.0 ** min(attempt, 64))
    delay = backoff * (0.5 + 0.5 * rnd())
    if retry_after is not None:
        delay = max(delay, retry_after * (1 + 0.1 * rnd()))
    return delay
