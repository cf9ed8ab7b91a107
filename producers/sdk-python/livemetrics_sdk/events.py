"""The event shapes of the gateway's v1 contract, as typed dicts (what ``Client.send`` takes).

They mirror ``livemetrics/contract.py`` (``EventIn`` and its parts) field for field; a test of the
monorepo (tests/unit/producers/test_sdk_python_contract.py) compares them with the contract's JSON
schema, so a field added there fails until it is added here. The gateway remains the judge: a broken
rule (a ``page_view`` without ``page``, a card number in ``details``) comes back in ``SendResult.rejected``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypedDict, Union

# The gateway's limits (livemetrics/contract.py): a request carries at most MAX_BATCH events and
# MAX_BODY_BYTES of JSON; an event larger than MAX_EVENT_BYTES is refused on its own.
MAX_BATCH = 500
MAX_BODY_BYTES = 1024 * 1024
MAX_EVENT_BYTES = 32 * 1024

EventType = Literal[
    "page_view", "heartbeat", "checkout_started", "payment_started", "payment_succeeded", "payment_failed"
]
PageType = Literal["home", "category", "offer", "product", "cart", "checkout", "payment", "other"]
# An amount: a Decimal or a plain decimal string ("59.90") is sent exactly; a float as its shortest repr.
Amount = Union[Decimal, str, float, int]
# `ts`: epoch milliseconds, or a time with a zone (a datetime, or an RFC 3339 string).
Timestamp = Union[int, datetime, str]


class _PageRequired(TypedDict):
    type: PageType


class Page(_PageRequired, total=False):
    category: str  # needed on category pages
    offer_id: str  # needed on offer pages
    path: str
    title: str
    referrer: str


class Item(TypedDict):
    sku: str
    name: str
    qty: int
    unit_price: Amount


class Checkout(TypedDict):
    items: list[Item]
    total: Amount
    currency: str  # ISO 4217, three capital letters


class _PaymentRequired(TypedDict):
    method: str  # lower case: "card", "paypal", "bank_transfer"
    amount: Amount
    currency: str
    order_id: str


class Payment(_PaymentRequired, total=False):
    error_code: str  # needed on payment_failed
    error_message: str
    details: dict[str, Any]  # never card data: the gateway refuses anything that looks like a card number
    items: list[Item]


class Customer(TypedDict, total=False):
    email: str
    phone: str
    name: str


class _EventRequired(TypedDict):
    event_id: str  # a UUID; filled in by the client when missing, and kept for every retry
    type: EventType
    session_id: str  # 8 to 64 characters
    ts: Timestamp  # filled in by the client (now) when missing


class Event(_EventRequired, total=False):
    page: Page  # page_view
    checkout: Checkout  # checkout_started
    payment: Payment  # payment_*
    customer: Customer  # checkout and payment events only
    seller_id: str  # optional; when given, the key's own seller
