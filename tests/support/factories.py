"""Event factories with overridable defaults: ``page_view(session_id="s-1", page={"type": "home"})``."""

from __future__ import annotations

import time
import uuid
from typing import Any

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
# The web origin the test sellers' browser keys allow (stack.new_seller); requests with a browser key send
# it, as a storefront's pages do (the gateway refuses a browser key from any other origin).
SHOP_ORIGIN = "https://shop.test"


def browser_headers(key: str, **extra: str) -> dict[str, str]:
    """The headers of a storefront page's request with its browser key."""
    return {"Authorization": f"Bearer {key}", "User-Agent": CHROME, "Origin": SHOP_ORIGIN, **extra}


def _base(type_: str, **kw: Any) -> dict[str, Any]:
    ev = {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "session_id": kw.pop("session_id", None) or f"sess-{uuid.uuid4().hex[:12]}",
        "ts": int(time.time() * 1000),
    }
    ev.update(kw)
    return ev


def page_view(
    page_type: str = "home", category: str | None = None, offer_id: str | None = None, **kw: Any
) -> dict[str, Any]:
    page: dict[str, Any] = {"type": page_type, "path": f"/{page_type}"}
    if category:
        page["category"] = category
    if offer_id:
        page["offer_id"] = offer_id
    kw.setdefault("page", page)
    return _base("page_view", **kw)


def heartbeat(**kw: Any) -> dict[str, Any]:
    return _base("heartbeat", **kw)


def customer(**kw: Any) -> dict[str, Any]:
    return {"email": "ada@example.com", "phone": "+44 20 7946 0958", "name": "Ada Lovelace", **kw}


def checkout_started(**kw: Any) -> dict[str, Any]:
    kw.setdefault(
        "checkout",
        {"items": [{"sku": "SKU-1", "name": "Lamp", "qty": 2, "unit_price": 19.5}], "total": 39.0, "currency": "EUR"},
    )
    kw.setdefault("customer", customer())
    return _base("checkout_started", **kw)


def payment(type_: str = "payment_started", **kw: Any) -> dict[str, Any]:
    pay = {"method": "card", "amount": 39.0, "currency": "EUR", "order_id": f"ord-{uuid.uuid4().hex[:8]}"}
    if type_ == "payment_failed":
        pay.update(
            error_code="card_declined", error_message="Insufficient funds", details={"gateway": "psp-x", "attempt": 1}
        )
    pay.update(kw.pop("payment_overrides", {}))
    kw.setdefault("payment", pay)
    kw.setdefault("customer", customer())
    return _base(type_, **kw)


def payment_failed(**kw: Any) -> dict[str, Any]:
    return payment("payment_failed", **kw)


def payment_succeeded(**kw: Any) -> dict[str, Any]:
    return payment("payment_succeeded", **kw)
