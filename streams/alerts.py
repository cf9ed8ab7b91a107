"""Payment alerts (pure): a failed payment next to the session's context, ready for the seller."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from livemetrics.contract import Event
from streams.state import SessionState

_NO_AMOUNT = Decimal(0)


def payment_failure_alert(ev: Event, st: SessionState | None, now: int) -> dict[str, Any]:
    """One alert per failed payment; ``alert_id`` is the event id so every consumer can de-duplicate."""
    pay = ev.payment
    ctx: dict[str, Any] = {}
    if st is not None:
        ctx = {
            "pages_seen": st.pages_seen,
            "trail": [{"location": loc, "at": at} for _, at, loc in st.trail[-10:]],
            "cart": st.checkout,
            "time_in_checkout_s": round((ev.received_at - st.checkout_at) / 1000, 1) if st.checkout_at else None,
        }
    return {
        "kind": "payment_failed",
        "alert_id": ev.event_id,
        "seller_id": ev.seller_id,
        "session_id": ev.session_id,
        "at": ev.received_at,
        "ts": ev.ts,
        "customer": msgspec.to_builtins(ev.customer) if ev.customer else {},
        "order": {
            "order_id": pay.order_id if pay else "",
            "amount": pay.amount if pay else _NO_AMOUNT,  # a Decimal: encoded as its decimal string
            "currency": pay.currency if pay else "",
            "items": msgspec.to_builtins(pay.items)
            if pay and pay.items
            else (st.checkout or {}).get("items")
            if st
            else None,
        },
        "payment": {
            "method": pay.method if pay else "",
            "error_code": pay.error_code if pay else "",
            "error_message": pay.error_message if pay else "",
            "details": pay.details if pay else None,
        },
        "client": {"ip": ev.ip, "browser": ev.browser, "os": ev.os, "device": ev.device, "user_agent": ev.user_agent},
        "context": ctx,
        # The trust label: "browser" (sent with a public key, anyone could have) or "server" (signed by the
        # seller's server); stamped by the gateway from the key, never from the event's own fields.
        "source": ev.source,
        "latency_ms": now - ev.received_at,
    }
