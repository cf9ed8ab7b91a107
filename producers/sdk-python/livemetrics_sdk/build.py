"""Event builders: a complete event of the contract (``event_id`` and ``ts`` filled in) from keywords.
``Client.page_view(...)`` and friends send one at once; ``Client.add(build.page_view(...))`` queues it."""

from __future__ import annotations

from typing import Any, Optional

from livemetrics_sdk.events import Amount, Customer, Event, Item, Page
from livemetrics_sdk.wire import complete


def event(type_: str, session_id: str, **fields: Any) -> Event:
    """Any event; fields given as None are left out."""
    body: dict[str, Any] = {"type": type_, "session_id": session_id}
    body.update({k: v for k, v in fields.items() if v is not None})
    return complete(body)  # type: ignore[return-value]


def page_view(session_id: str, page: Page, **fields: Any) -> Event:
    return event("page_view", session_id, page=page, **fields)


def checkout_started(
    session_id: str, items: list[Item], total: Amount, currency: str, customer: Optional[Customer] = None, **fields: Any
) -> Event:
    return event(
        "checkout_started",
        session_id,
        customer=customer,
        checkout={"items": items, "total": total, "currency": currency},
        **fields,
    )


def payment(
    type_: str,
    session_id: str,
    *,
    method: str,
    amount: Amount,
    currency: str,
    order_id: str,
    customer: Optional[Customer] = None,
    items: Optional[list[Item]] = None,
    error_code: Optional[str] = None,
    error_message: Optional[str] = None,
    details: Optional[dict[str, Any]] = None,
    **fields: Any,
) -> Event:
    """payment_started, payment_succeeded or payment_failed (which needs ``error_code``)."""
    pay: dict[str, Any] = {"method": method, "amount": amount, "currency": currency, "order_id": order_id}
    extra = {"error_code": error_code, "error_message": error_message, "details": details, "items": items}
    pay.update({k: v for k, v in extra.items() if v is not None})
    return event(type_, session_id, payment=pay, customer=customer, **fields)
