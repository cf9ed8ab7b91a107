"""Webhook requests (pure): the signature, the headers, the retry delay, a delivery's id.

Signed like server keys (docs/ingest.md): ``X-Livemetrics-Signature: v1=<hex>``, the HMAC-SHA256 with the
channel's signing secret of ``"<timestamp>." + body``, ``X-Livemetrics-Timestamp`` unix seconds. The
receiver recomputes it and refuses a timestamp far from its clock (replays). ``Idempotency-Key`` is the
alert id: delivery is at least once, a receiver drops what it already has (docs/notifications.md).
"""

from __future__ import annotations

import hashlib
import hmac
import random

USER_AGENT = "livemetrics-webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: int = 300) -> bool:
    """What a receiver does (and the docs' snippet shows): the signature matches and the time is recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    return abs(now - ts) <= tolerance_s and hmac.compare_digest(sign(secret, ts, body), signature)


def headers(secret: str, timestamp: int, body: bytes, alert_id: str, delivery_id: str, attempt: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Livemetrics-Timestamp": str(timestamp),
        "X-Livemetrics-Signature": sign(secret, timestamp, body),
        "Idempotency-Key": alert_id,
        "X-Livemetrics-Delivery": delivery_id,
        "X-Livemetrics-Attempt": str(attempt),
    }


def delivery_id(seller_id: str, alert_id: str, channel_id: str) -> str:
    """The same alert to the same channel is one delivery, however often Kafka hands the alert over."""
    return "dl_" + hashlib.sha256(f"{seller_id}\0{alert_id}\0{channel_id}".encode()).hexdigest()[:24]


def retry_delay(attempts: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: exponential (base, 2 base, 4 base,
    ... at most max_s) with jitter (between half and all of it), so that endpoints back after an outage
    are not hit by every retry at the same moment."""
    ceiling = min(max_s, base_s * 2 ** min(max(attempts - 1, 0), 60))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def give_up(created_ms: int, now_ms: int, next_delay_s: float, retry_for_s: float) -> bool:
    """True when the next attempt would fall after the retry window (the delivery is kept as failed)."""
    return now_ms + next_delay_s * 1000 > created_ms + retry_for_s * 1000
