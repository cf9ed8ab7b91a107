"""Stripe webhook events and signatures built the way Stripe documents them (stripe.com/docs/webhooks,
"Verify signatures manually"; object shapes from the API reference), with overridable defaults."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid


def sign(body: bytes, secret: str, ts: int | None = None, extra_v1: tuple[str, ...] = ()) -> str:
    """A ``Stripe-Signature`` header: ``t=<ts>,v1=<HMAC-SHA256(secret, "<ts>." + body)>`` (+ other v1s)."""
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return ",".join([f"t={ts}", f"v1={mac}", *(f"v1={v}" for v in extra_v1)])


def envelope(kind: str, obj: dict, created: int | None = None, evt_id: str | None = None) -> dict:
    return {
        "id": evt_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "type": kind,
        "data": {"object": obj},
    }


def intent(**over) -> dict:
    obj = {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": 5990,
        "currency": "eur",
        "metadata": {"order_id": "ORD-1001", "livemetrics_session_id": "sess-stripe-0001"},
        "payment_method_types": ["card"],
        "receipt_email": "ada@example.com",
        "latest_charge": None,
    }
    obj.update(over)
    return obj


def failed_intent(charge: str | None = "ch_3MtwBwLkdIwHu7ix2Ymz2G2w", **over) -> dict:
    err = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "charge": charge,
        "payment_method": {
            "id": "pm_1",
            "type": "card",
            "billing_details": {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+44 20 7946 0958"},
        },
    }
    if charge is None:
        del err["charge"]
    return intent(last_payment_error=err, **over)


def failed_charge(**over) -> dict:
    obj = {
        "id": "ch_3MtwBwLkdIwHu7ix2Ymz2G2w",
        "object": "charge",
        "amount": 5990,
        "currency": "eur",
        "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "failure_code": "card_declined",
        "failure_message": "Your card has insufficient funds.",
        "outcome": {"reason": "insufficient_funds"},
        "billing_details": {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+44 20 7946 0958"},
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
        "metadata": {"order_id": "ORD-1001", "livemetrics_session_id": "sess-stripe-0001"},
    }
    obj.update(over)
    return obj


def body(event: dict) -> bytes:
    return json.dumps(event).encode()
