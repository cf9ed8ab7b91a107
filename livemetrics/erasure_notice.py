"""The erase record: how ``livemetrics erase`` tells every running API process to drop a customer's
alerts from memory (api/live_feed.py follows the ``erasures`` topic).

The record never carries the email or phone itself: only a random salt and HMAC-SHA256(salt, value) of
the normalised email (trimmed, lower case) and of the phone's digits, matched the way erase.py matches
ClickHouse rows. ``at`` is when the erase happened: alerts of events received up to then are dropped,
also one that reaches an API process after the record; a later failure of the same customer is new data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import unicodedata
from typing import Any

import msgspec

_enc = msgspec.json.Encoder()


def _mac(salt: bytes, value: str) -> str:
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()


def norm_email(email: str | None) -> str:
    """The one spelling an address is compared in: trimmed, Unicode NFC (as the gateway stores it: an
    operator's keyboard may type "josé" decomposed), lower case. ``clickhouse/erase.py`` matches the
    stored column the same way (``STORED_EMAIL``)."""
    return unicodedata.normalize("NFC", (email or "").strip()).lower()


def phone_digits(phone: str | None) -> str:
    return re.sub(r"[^0-9]", "", phone or "")


def notice(email: str | None, phone: str | None, at_ms: int | None = None) -> dict[str, Any]:
    """The record for one erase request (at least one of email, phone)."""
    salt = os.urandom(16)
    return {
        "salt": salt.hex(),
        "at": int(time.time() * 1000) if at_ms is None else at_ms,
        "email": _mac(salt, norm_email(email)) if norm_email(email) else "",
        "phone": _mac(salt, phone_digits(phone)) if phone_digits(phone) else "",
    }


def matches(record: dict[str, Any], alert: dict[str, Any]) -> bool:
    """Whether an alert is about the erased customer and happened before the erase."""
    cust = alert.get("customer") or {}
    if not isinstance(cust, dict):
        return False
    at = alert.get("at")
    if isinstance(at, (int, float)) and at > record.get("at", 0):
        return False
    try:
        salt = bytes.fromhex(record.get("salt", ""))
    except ValueError:
        return False
    email, digits = norm_email(cust.get("email")), phone_digits(cust.get("phone"))
    return bool(
        (record.get("email") and email and hmac.compare_digest(_mac(salt, email), record["email"]))
        or (record.get("phone") and digits and hmac.compare_digest(_mac(salt, digits), record["phone"]))
    )


def publish(settings, email: str | None, phone: str | None) -> None:
    """Send the record to the ``erasures`` topic; RuntimeError when Kafka does not take it."""
    from confluent_kafka import Producer

    from livemetrics.kafka_config import producer_config

    p = Producer(producer_config(settings, log_level=4))
    err: list[Exception] = []
    p.produce(
        settings.topic("erasures"),
        value=_enc.encode(notice(email, phone)),
        on_delivery=lambda e, m: err.append(e) if e else None,
    )
    if p.flush(settings.delivery_timeout_ms / 1000 + 5) or err:
        raise RuntimeError(
            f"ClickHouse is erased, but running API processes could not be told (Kafka: "
            f"{err[0] if err else 'timed out'}): their recent alerts may show the customer until "
            "they restart; run the command again (an upgraded cluster may first need the "
            "`erasures` topic: `livemetrics kafka topics`)"
        )
