"""Stripe webhooks -> contract payment events (pure: no HTTP, no Kafka).

Verification follows Stripe's documented scheme: the ``Stripe-Signature`` header holds ``t=<unix
seconds>`` and one or more ``v1=<hex>`` (several while a signing secret is being rolled); ``v1`` is
HMAC-SHA256 keyed with the endpoint's signing secret (``whsec_...``) over ``"<t>." + raw body``; a
timestamp further than the tolerance from our clock is refused (replays).

Mapping (docs/providers.md): ``payment_intent.payment_failed`` and ``charge.failed`` -> ``payment_failed``;
``payment_intent.succeeded`` -> ``payment_succeeded``. Stripe sends both failure events for one failed
charge, and may deliver any event more than once: the event id is derived from the charge (or the
payment intent), so every copy is one event downstream (live counts, alerts and ClickHouse are
idempotent on event ids).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from decimal import Decimal
from typing import Any

HANDLED = ("payment_intent.payment_failed", "charge.failed", "payment_intent.succeeded")
# Stripe's currencies whose amounts are not in hundredths (stripe.com/docs/currencies).
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
_NS = uuid.UUID("6f1d3a52-3c8e-4d0b-9a57-1e2f0c5b7d11")  # livemetrics provider events (uuid5 namespace)
_SESSION = re.compile(r"^[\x21-\x7e]{8,64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{4,40}$")
MAX_TS_DIGITS = 12  # unix seconds until the year 33658


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a signed body of another shape than Stripe's
    (a list or string where an object belongs) reads as that part missing, never as an AttributeError."""
    return value if isinstance(value, dict) else {}


class SignatureError(ValueError):
    """The request is not a genuine, fresh Stripe delivery for this endpoint; the text says why."""


def verify(body: bytes, header: str | None, secret: str, now_s: float, tolerance_s: int = 300) -> None:
    """Raise ``SignatureError`` unless ``header`` signs ``body`` with ``secret`` within ``tolerance_s``."""
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    pairs = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts = [v.strip() for k, v in pairs if k.strip() == "t"]
    sigs = [v.strip() for k, v in pairs if k.strip() == "v1"]
    # ASCII digits only, and few: str.isdigit also takes '\xb2' (a header is read as Latin-1) and int() refuses
    # it, as it refuses over 4,300 digits; either raised ValueError, a 500 for anyone who knew the endpoint's URL.
    if len(ts) != 1 or not (ts[0].isascii() and ts[0].isdigit() and len(ts[0]) <= MAX_TS_DIGITS):
        raise SignatureError("Stripe-Signature has no timestamp (t=<unix seconds>)")
    if not sigs:
        raise SignatureError("Stripe-Signature has no v1 signature")
    if abs(now_s - int(ts[0])) > tolerance_s:
        raise SignatureError(f"Stripe-Signature timestamp is more than {tolerance_s} s from the gateway's clock")
    want = hmac.new(secret.encode(), ts[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(want, s) for s in sigs):
        raise SignatureError("no v1 signature matches this endpoint's signing secret")


def amount(minor: Any, currency: str) -> str:
    """Stripe's integer amount in the currency's smallest unit, as the contract's decimal string."""
    if not isinstance(minor, int) or isinstance(minor, bool) or minor < 0:
        raise ValueError(f"amount {minor!r} is not a non-negative integer")
    exp = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    return str(Decimal(minor).scaleb(-exp))


def _customer(*sources: dict[str, Any] | None) -> dict[str, str] | None:
    """Email, phone and name from the first source that has each; values the contract refuses are left out
    (a checkout's typo must not cost the seller the failure alert itself)."""
    out: dict[str, str] = {}
    for src in sources:
        for field, check in (("email", _EMAIL), ("phone", _PHONE), ("name", None)):
            value = _obj(src).get(field)
            if field in out or not isinstance(value, str) or not value.strip():
                continue
            value = value.strip()[:200]
            if check is None or (check.match(value) and len(value) <= (254 if field == "email" else 40)):
                out[field] = value
    return out or None


def _session(seller: str, metadata: dict[str, Any], intent: str) -> str:
    sid = metadata.get("livemetrics_session_id")
    return sid if isinstance(sid, str) and _SESSION.match(sid) else f"stripe-{intent or seller}"[:64]


def event_id(seller: str, outcome: str, ref: str) -> str:
    """The same id for every delivery (and both failure events) of one outcome."""
    return str(uuid.uuid5(_NS, f"stripe:{seller}:{outcome}:{ref}"))


def to_event(seller: str, stripe_event: dict[str, Any]) -> dict[str, Any] | None:
    """The contract event (as a storefront would send it) for a Stripe event, or None for a type we do not
    map. ``ValueError`` when a mapped event lacks what the contract needs (the text names it)."""
    kind = stripe_event.get("type")
    if kind not in HANDLED:
        return None
    obj = _obj(stripe_event.get("data")).get("object")
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise ValueError("data.object with an id is missing")
    currency = str(obj.get("currency") or "").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError(f"data.object.currency {obj.get('currency')!r} is not a currency code")
    metadata = _obj(obj.get("metadata"))
    created = stripe_event.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise ValueError("created (unix seconds) is missing")
    if kind == "charge.failed":
        charge, intent = obj["id"], obj.get("payment_intent") or ""
        method = _obj(obj.get("payment_method_details")).get("type") or "unknown"
        outcome_ = _obj(obj.get("outcome"))
        code = obj.get("failure_code") or outcome_.get("reason") or "charge_failed"
        message = obj.get("failure_message") or outcome_.get("seller_message")
        customer = _customer(obj.get("billing_details"), {"email": obj.get("receipt_email")})
        outcome, ref = "failed", f"charge:{charge}"
    else:
        intent, err = obj["id"], _obj(obj.get("last_payment_error"))
        pm = _obj(err.get("payment_method"))
        charge = err.get("charge") or ""
        types = obj.get("payment_method_types")
        method = pm.get("type") or (types[0] if isinstance(types, list) and types else "unknown")
        code = err.get("decline_code") or err.get("code") or "payment_failed"
        message = err.get("message")
        customer = _customer(pm.get("billing_details"), {"email": obj.get("receipt_email")}, obj.get("shipping"))
        if kind == "payment_intent.succeeded":
            outcome, ref = "succeeded", f"intent:{intent}"
        else:  # the charge when there is one (then charge.failed is the same outcome), else this attempt
            outcome, ref = "failed", f"charge:{charge}" if charge else f"intent:{intent}:{stripe_event.get('id')}"
    payment: dict[str, Any] = {
        "method": re.sub(r"[^a-z0-9_]", "_", str(method).lower())[:40] or "unknown",
        "amount": amount(obj.get("amount"), currency),
        "currency": currency,
        "order_id": str(metadata.get("order_id") or intent or obj["id"])[:200],
        "details": {
            k: v
            for k, v in (
                ("provider", "stripe"),
                ("stripe_event", stripe_event.get("id")),
                ("payment_intent", intent),
                ("charge", charge),
            )
            if v
        },
    }
    if not payment["method"][0].isalpha():
        payment["method"] = "m_" + payment["method"][:38]
    if outcome == "failed":
        payment["error_code"] = str(code)[:200]
        if message:
            payment["error_message"] = str(message)[:2000]
    ev: dict[str, Any] = {
        "event_id": event_id(seller, outcome, ref),
        "type": f"payment_{outcome}",
        "session_id": _session(seller, metadata, intent),
        "ts": created * 1000,
        "payment": payment,
    }
    if customer:
        ev["customer"] = customer
    return ev
