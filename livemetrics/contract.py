"""The event contract (docs/ingest.md), defined once.

The gateway validates with ``EventIn``; everything after the gateway (Kafka, Faust agents, the
ClickHouse sink, the API) speaks ``Event``: the same fields, normalised, plus what the gateway stamps.
``STORED`` is the raw-events table the sink writes, each column with the ``Event`` field it holds, here
so that it is never repeated elsewhere (``COLUMNS``: with getters derived from it).
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from livemetrics import details_limits
from livemetrics.page_emails import mask_page

EVENT_TYPES = ("page_view", "heartbeat", "checkout_started", "payment_started", "payment_succeeded", "payment_failed")
PAGE_TYPES = ("home", "category", "offer", "product", "cart", "checkout", "payment", "other")
PII_TYPES = frozenset({"checkout_started", "payment_started", "payment_succeeded", "payment_failed"})
TOPIC_FOR_TYPE = {
    "page_view": "page-events",
    "heartbeat": "page-events",
    "checkout_started": "checkout-events",
    "payment_started": "payment-events",
    "payment_succeeded": "payment-events",
    "payment_failed": "payment-events",
}

MAX_EVENT_BYTES = 32 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH = 500

EventType = Literal[
    "page_view", "heartbeat", "checkout_started", "payment_started", "payment_succeeded", "payment_failed"
]
PageType = Literal["home", "category", "offer", "product", "cart", "checkout", "payment", "other"]
Short = Annotated[str, Meta(max_length=200)]
Text = Annotated[str, Meta(max_length=2048)]
# Python's `$` (msgspec's engine) also matches before a final newline, so `^[A-Z]{3}$` let "EUR\n" through,
# and "shoes\n" was a category of its own that looks like "shoes". `(?!\n)` after it holds only at the very
# end there, and changes nothing for ECMA-262 regexes (the OpenAPI's readers), where `$` is the end already.
END = r"$(?!\n)"
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*" + END
CURRENCY_PATTERN = r"^[A-Z]{3}" + END
METHOD_PATTERN = r"^[a-z][a-z0-9_]*" + END
# Python's \s (msgspec's engine: str.isspace) spelt out: the OpenAPI document's readers (JavaScript, JSON
# Schema's ECMA dialect) read \s as another set (without U+001C-U+001F and U+0085, with U+FEFF), so an email
# holding one of those was valid by the schema and refused by the gateway (a longer schemathesis run).
_NOT_SPACE_OR_AT = r"[^@\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
EMAIL_PATTERN = "^" + _NOT_SPACE_OR_AT + "+@" + _NOT_SPACE_OR_AT + "+" + END
PHONE_PATTERN = r"^\+?[0-9 ()\-.]{4,40}" + END
Slug = Annotated[str, Meta(min_length=1, max_length=100, pattern=SLUG_PATTERN)]
Currency = Annotated[str, Meta(pattern=CURRENCY_PATTERN)]
# Money: a JSON number or a decimal string ("59.90"), decoded exactly (msgspec reads the number's digits,
# never a float) and carried through Kafka as a decimal string. msgspec cannot bound a Decimal, so
# ``money`` (run by ``check_rules``) holds the range and the scale; ClickHouse stores MONEY_TYPE.
MONEY_MAX = Decimal(10**12)
MONEY_SCALE = 4
MONEY_TYPE = "Decimal(18, 4)"  # 14 integer digits: MONEY_MAX fits; ClickHouse sums it as Decimal(38, 4)
Money = Annotated[
    Decimal,
    Meta(
        description=f'an amount: a JSON number or a decimal string such as "59.90"; 0 to {MONEY_MAX}, '
        f"at most {MONEY_SCALE} decimal places",
        examples=["59.90"],
    ),
]
# Identifiers that reports group by or look up (a session, an order, a SKU, a payment error code) hold no
# invisible format character (Unicode category Cf: zero-width space U+200B, joiners, word joiner U+2060,
# bidi controls U+202A-202E/U+2066-2069, soft hyphen, BOM): "card_declined" with a U+200B in it was a
# second row that looks the same in every report. Nor a control character (Cc: NUL, tab, CR, LF, DEL, C1),
# for the same reason ("card_declined\u0000", "sess-0001\n" went through: ASCII skipped the check). Checked by ``check_rules`` (a pattern cannot name every
# Cf character in both Python's and ECMA-262's syntax); display text (names, titles, messages) keeps them,
# as emoji and several scripts need joiners and bidi marks.
IDENTIFIER_RULE = (
    "No control characters (Unicode category Cc: NUL, tab, line breaks, DEL, C1 controls) and no invisible "
    "format characters (Cf: zero-width spaces and joiners, word joiner, bidi controls, soft hyphen, BOM): "
    "they would make a second value that looks the same."
)
SessionId = Annotated[str, Meta(min_length=8, max_length=64, description=IDENTIFIER_RULE)]
Identifier = Annotated[str, Meta(max_length=200, description=IDENTIFIER_RULE)]


class Page(Struct, forbid_unknown_fields=True, omit_defaults=True):
    type: PageType
    category: Slug | None = None
    offer_id: Slug | None = None
    path: Text | None = None
    title: Short | None = None
    referrer: Text | None = None


class Item(Struct, forbid_unknown_fields=True):
    sku: Identifier
    name: Short
    qty: Annotated[int, Meta(ge=1, le=100_000)]
    unit_price: Money


class Checkout(Struct, forbid_unknown_fields=True, omit_defaults=True):
    items: Annotated[list[Item], Meta(max_length=200)]
    total: Money
    currency: Currency


class Payment(Struct, forbid_unknown_fields=True, omit_defaults=True):
    method: Annotated[str, Meta(min_length=1, max_length=40, pattern=METHOD_PATTERN)]
    amount: Money
    currency: Currency
    order_id: Identifier
    error_code: Identifier | None = None
    error_message: Text | None = None
    details: Annotated[dict[str, Any], Meta(description=details_limits.DESCRIPTION)] | None = (
        None  # limits: check_rules
    )
    items: Annotated[list[Item], Meta(max_length=200)] | None = None


class Customer(Struct, forbid_unknown_fields=True, omit_defaults=True):
    email: Annotated[str, Meta(max_length=254, pattern=EMAIL_PATTERN)] | None = None
    phone: Annotated[str, Meta(max_length=40, pattern=PHONE_PATTERN)] | None = None
    name: Short | None = None


class EventIn(Struct, forbid_unknown_fields=True):
    """An event as a storefront sends it."""

    event_id: uuid.UUID
    type: EventType
    session_id: SessionId
    ts: datetime | int
    page: Page | None = None
    checkout: Checkout | None = None
    payment: Payment | None = None
    customer: Customer | None = None
    seller_id: Short | None = None  # optional; must match the key's seller when given


class Event(Struct, omit_defaults=True):
    """An accepted event as it travels through Kafka: ``EventIn`` normalised plus gateway stamps."""

    event_id: str
    type: str
    seller_id: str
    session_id: str
    ts: int  # sender time, epoch ms
    received_at: int  # gateway time, epoch ms; the clock of every live window
    # The event's position in its request (0: first, omitted), stamped by the gateway: with received_at
    # and ts it orders the events of one request as the storefront sent them (docs/live-semantics.md).
    seq: int = 0
    page: Page | None = None
    checkout: Checkout | None = None
    payment: Payment | None = None
    customer: Customer | None = None
    ip: str | None = None  # kept only on payment failures
    ip_hash: str | None = None
    user_agent: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None
    is_bot: bool = False
    backfill: bool = False  # historical import: stored, never counted live
    # The kind of key the gateway authenticated (never a sender's field): "browser" (a public key, anyone
    # can send with it) or "server" (signed by the seller's server). Unstamped (older) events read as
    # browser, the less trusted. Alerts carry it as their trust label (docs/security.md, Browser keys).
    source: str = "browser"


class ContractError(ValueError):
    """An event breaks the contract; ``str(err)`` names the field."""


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> Event:
    return _event_decoder.decode(data)


def epoch_ms(ts: datetime | int) -> int:
    if isinstance(ts, int):
        if not 946_684_800_000 <= ts <= 32_503_680_000_000:  # 2000-01-01 .. 3000-01-01
            raise ContractError("`ts` as a number must be epoch milliseconds after 2000-01-01 - at `$.ts`")
        return ts
    if ts.tzinfo is None:
        raise ContractError("`ts` needs a time zone offset (RFC 3339) - at `$.ts`")
    return int(ts.timestamp() * 1000)


_PAYMENT_TYPES = frozenset(t for t in EVENT_TYPES if t.startswith("payment_"))
_MONEY_STEP = Decimal(1).scaleb(-MONEY_SCALE)
_NO_MONEY = Decimal(0)


def money(d: Decimal) -> Decimal | None:
    """``d`` as it is sent on and stored, or None when it is not an amount (not finite, out of range, more
    than MONEY_SCALE decimal places other than trailing zeros). Canonical: no exponent, no negative zero,
    so that every consumer reads the plain decimal string it was sent ("59.90" stays "59.90")."""
    if not d.is_finite() or d < 0 or d > MONEY_MAX:  # -0 is not < 0
        return None
    exponent = int(d.as_tuple().exponent)  # an int: d is finite
    if -MONEY_SCALE <= exponent <= 0 and not d.is_signed():
        return d
    q = d.quantize(_MONEY_STEP)  # 1E+3 -> 1000.0000; 59.900000 -> 59.9000; 59.90001 differs: refused
    return q.copy_abs() if q == d else None


_CENTS = Decimal("0.01")
_WIDE = Context(prec=40)  # a ClickHouse sum is a Decimal(38, 4): wider than the default 28 digits


def money_text(d: Decimal) -> str:
    """A stored amount (or sum) as the API writes it: an exact decimal string, zeros past the cents dropped
    ("59.9000" -> "59.90", "0.1250" -> "0.125"). A string, so that no JSON reader turns it into a float."""
    n = d.normalize(_WIDE)
    return f"{n.quantize(_CENTS, context=_WIDE) if int(n.as_tuple().exponent) > -2 else n:f}"


def _bad_money(where: str) -> ContractError:  # the value is not repeated: it could be anything, card data too
    return ContractError(
        f"an amount must be a decimal from 0 to {MONEY_MAX} with at most {MONEY_SCALE} decimal places - at `{where}`"
    )


def _check_prices(items: list[Item], where: str) -> None:
    for i, it in enumerate(items):
        p = money(it.unit_price)
        if p is None:
            raise _bad_money(f"{where}.items[{i}].unit_price")
        it.unit_price = p
        sku = it.sku
        if not (sku.isascii() and sku.isprintable()):
            _check_identifier(sku, f"{where}.items[{i}].sku")


def _check_identifier(value: str, where: str) -> None:
    """``IDENTIFIER_RULE`` for a value that is not printable ASCII (``str.isprintable`` on an ASCII string is
    False exactly when it holds a control character; a non-ASCII one is read character by character)."""
    for ch in value:
        if unicodedata.category(ch) == "Cf":
            name = unicodedata.name(ch, "format character")
            raise ContractError(
                f"`{where}` holds an invisible format character (U+{ord(ch):04X} {name}): it would make a "
                f"second value that looks the same in reports; send the identifier without it - at `{where}`"
            )
    for ch in value:  # after the format characters: a value with both names its format character
        if unicodedata.category(ch) == "Cc":
            raise ContractError(
                f"`{where}` holds a control character (U+{ord(ch):04X}): it would make a second value that "
                f"looks the same in reports; send the identifier without it - at `{where}`"
            )


def check_rules(ev: EventIn) -> None:
    """Cross-field rules that a schema alone cannot say (checked in this order: the first broken one is named),
    then the amounts (range and scale, which msgspec cannot bound on a Decimal) and the customer's email
    (Unicode NFC), made canonical in place, and email addresses in the page's URL and title masked.

    Runs for every accepted event, so each field is read once and the type is tested by set membership."""
    t = ev.type
    page, checkout, payment = ev.page, ev.checkout, ev.payment
    if page is None:
        if t == "page_view":
            raise ContractError("Object missing required field `page` (page_view) - at `$.page`")
    else:
        if page.type == "category" and not page.category:
            raise ContractError("category pages need `page.category` - at `$.page.category`")
        if page.type == "offer" and not page.offer_id:
            raise ContractError("offer pages need `page.offer_id` - at `$.page.offer_id`")
    is_payment = t in _PAYMENT_TYPES
    if checkout is None and t == "checkout_started":
        raise ContractError("Object missing required field `checkout` (checkout_started) - at `$.checkout`")
    if payment is None and is_payment:
        raise ContractError(f"Object missing required field `payment` ({t}) - at `$.payment`")
    if t == "payment_failed" and not payment.error_code:  # type: ignore[union-attr]
        raise ContractError("payment_failed needs `payment.error_code` - at `$.payment.error_code`")
    sid = ev.session_id
    if not (sid.isascii() and sid.isprintable()):
        _check_identifier(sid, "$.session_id")
    if payment is not None:
        order_id, code = payment.order_id, payment.error_code
        if not (order_id.isascii() and order_id.isprintable()):
            _check_identifier(order_id, "$.payment.order_id")
        if code is not None and not (code.isascii() and code.isprintable()):
            _check_identifier(code, "$.payment.error_code")
    if ev.customer is not None and t not in PII_TYPES:
        raise ContractError(f"personal data is not accepted on {t} events - at `$.customer`")
    if checkout is not None and t != "checkout_started":
        raise ContractError(f"`checkout` is not accepted on {t} events - at `$.checkout`")
    if payment is not None and not is_payment:
        raise ContractError(f"`payment` is not accepted on {t} events - at `$.payment`")
    if payment is not None and payment.details:
        too_big = details_limits.details_error(payment.details)
        if too_big:
            raise ContractError(too_big)
    if checkout is not None:  # amounts last: put in canonical form (see ``money``) as they are checked
        total = money(checkout.total)
        if total is None:
            raise _bad_money("$.checkout.total")
        checkout.total = total
        _check_prices(checkout.items, "$.checkout")
    if payment is not None:
        amount = money(payment.amount)
        if amount is None:
            raise _bad_money("$.payment.amount")
        payment.amount = amount
        if payment.items:
            _check_prices(payment.items, "$.payment")
    customer = ev.customer
    if customer is not None and customer.email is not None and not customer.email.isascii():
        # One spelling of each address (NFC): a storefront may send "josé" with a combining accent (NFD),
        # and `livemetrics erase --email josé@...` compares code points (docs/security.md, Personal data).
        customer.email = unicodedata.normalize("NFC", customer.email)
    if page is not None:  # customer addresses in URLs and titles (livemetrics/page_emails.py); inline: every event
        path, referrer, title = page.path, page.referrer, page.title
        if (
            (path and ("@" in path or "%40" in path))
            or (referrer and ("@" in referrer or "%40" in referrer))
            or (title and "@" in title)
        ):
            mask_page(page)


def location_of(ev: Event) -> str | None:
    """Where an event puts its session (docs/live-semantics.md); None for events that do not move it."""
    t = ev.type
    if t == "checkout_started":
        return "checkout"
    if t in ("payment_started", "payment_failed"):
        return "payment"
    if t == "payment_succeeded":
        return "purchased"
    if ev.page is None:
        return None
    p = ev.page
    if p.type == "category":
        return f"category:{p.category}"
    if p.type == "offer":
        return f"offer:{p.offer_id}"
    return p.type


# --- the raw-events table, derived from Event ---------------------------------------------------
# Each column of ``events`` names the Event field it holds: a dotted path, or "a.x|b.y" for "from the
# first of the objects a, b that the event has". A field (or object) the event lacks gives the column
# type's default ("", 0, false). Everything the sink does with an event is derived from this table: the
# getters here, what ClickHouse reads of a raw event and how it turns it into a row
# (clickhouse/events_read.py), the benchmarks' Arrow tables (operations/bench/events_arrow.py).
# tests/unit/clickhouse/test_events_read.py fails when Event gains a field that is neither stored nor in
# NOT_STORED.
STORED: tuple[tuple[str, str, str], ...] = (
    ("event_id", "UUID", "event_id"),
    ("type", "LowCardinality(String)", "type"),
    ("seller_id", "LowCardinality(String)", "seller_id"),
    ("session_id", "String", "session_id"),
    ("ts", "DateTime64(3, 'UTC')", "ts"),
    ("received_at", "DateTime64(3, 'UTC')", "received_at"),
    ("page_type", "LowCardinality(String)", "page.type"),
    ("category", "LowCardinality(String)", "page.category"),
    ("offer_id", "String", "page.offer_id"),
    ("path", "String", "page.path"),
    ("items", "String", "checkout.items|payment.items"),  # free-form JSON: stored as its JSON text
    ("total", MONEY_TYPE, "checkout.total|payment.amount"),
    ("currency", "LowCardinality(String)", "checkout.currency|payment.currency"),
    ("payment_method", "LowCardinality(String)", "payment.method"),
    ("order_id", "String", "payment.order_id"),
    ("error_code", "LowCardinality(String)", "payment.error_code"),
    ("error_message", "String", "payment.error_message"),
    ("error_details", "String", "payment.details"),
    ("customer_email", "String", "customer.email"),
    ("customer_phone", "String", "customer.phone"),
    ("customer_name", "String", "customer.name"),
    ("ip", "String", "ip"),
    ("ip_hash", "String", "ip_hash"),
    ("user_agent", "String", "user_agent"),
    ("browser", "LowCardinality(String)", "browser"),
    ("os", "LowCardinality(String)", "os"),
    ("device", "LowCardinality(String)", "device"),
    ("is_bot", "Bool", "is_bot"),
    ("backfill", "Bool", "backfill"),
)
# Event fields deliberately not stored: the request order (live state only), the key kind (alerts carry
# it), a page's title and referrer.
NOT_STORED = frozenset({"seq", "source", "page.title", "page.referrer"})
SOURCES: dict[str, tuple[str, ...]] = {name: tuple(src.split("|")) for name, _, src in STORED}


def column_default(ch_type: str) -> Any:
    """What a column holds when the event lacks its field: ClickHouse's default for the type."""
    if ch_type == MONEY_TYPE:
        return _NO_MONEY
    return False if ch_type == "Bool" else ""


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _json(v: Any) -> str:
    return "" if v is None else _encoder.encode(v).decode()


def source_value(e: Any, sources: tuple[tuple[str, ...], ...]) -> Any:
    """The value a column takes from ``e`` (an Event, or a struct with its field names), before any
    conversion: ``sources`` are its SOURCES split at the dots; None when the event lacks the field."""
    for *objects, field in sources:
        holder = e
        for name in objects:
            holder = getattr(holder, name)
            if holder is None:
                break
        else:
            return getattr(holder, field)
    return None


def _getter(ch_type: str, sources: tuple[str, ...]) -> Callable[[Event], Any]:
    default, paths = column_default(ch_type), tuple(tuple(p.split(".")) for p in sources)
    convert: Callable[[Any], Any] = (
        uuid.UUID if ch_type == "UUID" else _dt if ch_type.startswith("DateTime64") else lambda v: v
    )

    def get(e: Event) -> Any:
        v = source_value(e, paths)
        if v is None:
            return default
        return _json(v) if isinstance(v, (list, dict)) else convert(v)

    return get


_Col = tuple[str, str, Callable[[Event], Any]]
COLUMNS: tuple[_Col, ...] = tuple((name, typ, _getter(typ, SOURCES[name])) for name, typ, _ in STORED)
COLUMN_NAMES = tuple(c[0] for c in COLUMNS)
PII_COLUMNS = ("customer_email", "customer_phone", "customer_name", "ip")


def to_row(e: Event) -> list[Any]:
    return [get(e) for _, _, get in COLUMNS]
