"""Kafka messages -> Arrow tables, column by column (no per-row dicts or tuples).

Raw events: the layout comes from ``livemetrics.contract.COLUMNS`` (names, ClickHouse types, getters);
only the columns whose generic getter would build slow Python objects (UUID, datetime) get a vectorised
path here. The sink itself lets ClickHouse parse raw events (``events_json``); these tables are what the
benchmarks insert (the sink's ceiling, the query history), and ``SinkEvent`` is also how the sink tells
a value that is not an event. Alerts from ``payment-alerts`` (built in ``streams/alerts.py``) map to
``payment_errors``; the sink inserts those as Arrow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import pyarrow as pa

from livemetrics.contract import COLUMNS, MONEY_MAX, MONEY_SCALE, MONEY_TYPE

log = logging.getLogger("livemetrics.sink")
KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset")
_KAFKA_TYPES = (pa.string(), pa.uint16(), pa.uint64())
_json = msgspec.json.Encoder()
MONEY_ARROW = pa.decimal128(18, MONEY_SCALE)  # contract.MONEY_TYPE
_NO_MONEY = Decimal(0)
_MONEY_STEP = Decimal(1).scaleb(-MONEY_SCALE)


def arrow_type(ch_type: str) -> pa.DataType:
    """The Arrow type we send for a ClickHouse column type (ClickHouse converts on insert)."""
    base = (
        ch_type.removeprefix("LowCardinality(").removesuffix(")") if ch_type.startswith("LowCardinality(") else ch_type
    )
    if base.startswith("DateTime64"):
        return pa.timestamp("ms", tz="UTC")
    if base == MONEY_TYPE:
        return MONEY_ARROW
    return {
        "String": pa.string(),
        "UUID": pa.string(),
        "Float64": pa.float64(),
        "Bool": pa.bool_(),
        "UInt16": pa.uint16(),
        "UInt64": pa.uint64(),
    }[base]


# The sink decodes into lax mirrors of the contract structs: the gateway already validated every event,
# so no constraint is checked again, and free-form JSON (items, details) stays raw bytes.
class _Page(msgspec.Struct, gc=False):
    type: str = ""
    category: str | None = None
    offer_id: str | None = None
    path: str | None = None


class _Checkout(msgspec.Struct, gc=False):
    items: msgspec.Raw = msgspec.Raw()
    total: Decimal = _NO_MONEY
    currency: str = ""


class _Payment(msgspec.Struct, gc=False):
    method: str = ""
    amount: Decimal = _NO_MONEY
    currency: str = ""
    order_id: str = ""
    error_code: str | None = None
    error_message: str | None = None
    details: msgspec.Raw = msgspec.Raw()
    items: msgspec.Raw = msgspec.Raw()


class _Customer(msgspec.Struct, gc=False):
    email: str | None = None
    phone: str | None = None
    name: str | None = None


class SinkEvent(msgspec.Struct, gc=False):
    """``contract.Event`` as the sink reads it (same field names; a unit test keeps them in step)."""

    event_id: str
    type: str
    seller_id: str
    session_id: str
    ts: int
    received_at: int
    seq: int = 0  # not stored: it orders a request's events for the live state only
    page: _Page | None = None
    checkout: _Checkout | None = None
    payment: _Payment | None = None
    customer: _Customer | None = None
    ip: str | None = None
    ip_hash: str | None = None
    user_agent: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None
    is_bot: bool = False
    backfill: bool = False
    source: str = "browser"  # not stored (the key kind): alerts carry it as their trust label


def _raw(r: msgspec.Raw) -> str:
    b = bytes(r)
    return "" if not b or b == b"null" else b.decode()


def _ts(values: list[int]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))


# One list comprehension per contract column (a Python call per cell would cost 3x). The unit tests
# check that this covers exactly contract.COLUMNS and agrees with the contract's own getters.
EXTRACT: dict[str, Callable[[list[SinkEvent]], Any]] = {
    "event_id": lambda evs: [e.event_id for e in evs],
    "type": lambda evs: [e.type for e in evs],
    "seller_id": lambda evs: [e.seller_id for e in evs],
    "session_id": lambda evs: [e.session_id for e in evs],
    "ts": lambda evs: _ts([e.ts for e in evs]),
    "received_at": lambda evs: _ts([e.received_at for e in evs]),
    "page_type": lambda evs: [p.type if (p := e.page) else "" for e in evs],
    "category": lambda evs: [(p.category or "") if (p := e.page) else "" for e in evs],
    "offer_id": lambda evs: [(p.offer_id or "") if (p := e.page) else "" for e in evs],
    "path": lambda evs: [(p.path or "") if (p := e.page) else "" for e in evs],
    "items": lambda evs: [
        _raw(c.items) if (c := e.checkout) else (_raw(p.items) if (p := e.payment) else "") for e in evs
    ],
    "total": lambda evs: [c.total if (c := e.checkout) else (p.amount if (p := e.payment) else _NO_MONEY) for e in evs],
    "currency": lambda evs: [
        c.currency if (c := e.checkout) else (p.currency if (p := e.payment) else "") for e in evs
    ],
    "payment_method": lambda evs: [p.method if (p := e.payment) else "" for e in evs],
    "order_id": lambda evs: [p.order_id if (p := e.payment) else "" for e in evs],
    "error_code": lambda evs: [(p.error_code or "") if (p := e.payment) else "" for e in evs],
    "error_message": lambda evs: [(p.error_message or "") if (p := e.payment) else "" for e in evs],
    "error_details": lambda evs: [_raw(p.details) if (p := e.payment) else "" for e in evs],
    "customer_email": lambda evs: [(c.email or "") if (c := e.customer) else "" for e in evs],
    "customer_phone": lambda evs: [(c.phone or "") if (c := e.customer) else "" for e in evs],
    "customer_name": lambda evs: [(c.name or "") if (c := e.customer) else "" for e in evs],
    "ip": lambda evs: [e.ip or "" for e in evs],
    "ip_hash": lambda evs: [e.ip_hash or "" for e in evs],
    "user_agent": lambda evs: [e.user_agent or "" for e in evs],
    "browser": lambda evs: [e.browser or "" for e in evs],
    "os": lambda evs: [e.os or "" for e in evs],
    "device": lambda evs: [e.device or "" for e in evs],
    "is_bot": lambda evs: [e.is_bot for e in evs],
    "backfill": lambda evs: [e.backfill for e in evs],
}
EVENT_SCHEMA = pa.schema([(n, arrow_type(t)) for n, t, _ in COLUMNS] + list(zip(KAFKA_COLUMNS, _KAFKA_TYPES)))


_batch_decoder = msgspec.json.Decoder(list[SinkEvent])
_event_decoder = msgspec.json.Decoder(SinkEvent)


def decode_events(values: list[bytes]) -> tuple[list[SinkEvent], list[int]]:
    """Decode a batch of raw-topic messages; returns the events and the indexes that were undecodable."""
    try:
        return _batch_decoder.decode(b"[" + b",".join(values) + b"]"), []
    except msgspec.DecodeError:
        events, bad = [], []
        for i, v in enumerate(values):
            try:
                events.append(_event_decoder.decode(v))
            except msgspec.DecodeError:
                bad.append(i)
        return events, bad


def events_table(events: list[SinkEvent], topics: list[str], partitions: list[int], offsets: list[int]) -> pa.Table:
    arrays: list[Any] = [EXTRACT[name](events) for name, _, _ in COLUMNS]
    arrays += [topics, partitions, offsets]
    return pa.Table.from_arrays(
        [a if isinstance(a, pa.Array) else pa.array(a, f.type) for a, f in zip(arrays, EVENT_SCHEMA)],
        schema=EVENT_SCHEMA,
    )


# --- payment-alerts -> payment_errors -------------------------------------------------------------
ALERT_KNOWN = {"kind", "alert_id", "seller_id", "session_id", "at", "customer", "order", "payment", "client", "context"}
ALERT_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("kind", pa.string()),
        ("seller_id", pa.string()),
        ("session_id", pa.string()),
        ("at", pa.timestamp("ms", tz="UTC")),
        ("customer_email", pa.string()),
        ("customer_phone", pa.string()),
        ("customer_name", pa.string()),
        ("ip", pa.string()),
        ("order_id", pa.string()),
        ("amount", MONEY_ARROW),
        ("currency", pa.string()),
        ("items", pa.string()),
        ("payment_method", pa.string()),
        ("error_code", pa.string()),
        ("error_message", pa.string()),
        ("error_details", pa.string()),
        ("browser", pa.string()),
        ("os", pa.string()),
        ("device", pa.string()),
        ("user_agent", pa.string()),
        ("context", pa.string()),
        ("extra", pa.string()),
        ("kafka_topic", pa.string()),
        ("kafka_partition", pa.uint16()),
        ("kafka_offset", pa.uint64()),
    ]
)


def _s(v: Any) -> str:
    return "" if v is None else str(v)


def _j(v: Any) -> str:
    return "" if v is None else _json.encode(v).decode()


def _money(v: Any) -> Decimal:
    """An alert's amount (a decimal string; a number in alerts from before money was decimal) at the stored
    scale; 0 when it is not a number, as for any other unusable field of an alert."""
    try:
        d = Decimal(v if isinstance(v, str) else repr(v or 0)).quantize(_MONEY_STEP)
    except (InvalidOperation, TypeError, ValueError):
        return _NO_MONEY
    return d if d.is_finite() and abs(d) <= MONEY_MAX else _NO_MONEY  # a larger one would fail the whole batch


def alert_row(a: dict[str, Any]) -> list[Any]:
    cust, order, pay, client = (a.get(k) or {} for k in ("customer", "order", "payment", "client"))
    extra = {k: v for k, v in a.items() if k not in ALERT_KNOWN}
    return [
        _s(a.get("alert_id")),
        _s(a.get("kind")) or "payment_failed",
        _s(a.get("seller_id")),
        _s(a.get("session_id")),
        int(a.get("at") or 0),
        _s(cust.get("email")),
        _s(cust.get("phone")),
        _s(cust.get("name")),
        _s(client.get("ip")),
        _s(order.get("order_id")),
        _money(order.get("amount")),
        _s(order.get("currency")),
        _j(order.get("items")),
        _s(pay.get("method")),
        _s(pay.get("error_code")),
        _s(pay.get("error_message")),
        _j(pay.get("details")),
        _s(client.get("browser")),
        _s(client.get("os")),
        _s(client.get("device")),
        _s(client.get("user_agent")),
        _j(a.get("context") or None),
        _j(extra or None),
    ]


def alerts_from_messages(msgs: list) -> pa.Table:
    """``payment-alerts`` Kafka messages -> the ``payment_errors`` table; unusable ones are logged, skipped."""
    alerts, kept = [], []
    for m in msgs:
        try:
            a = msgspec.json.decode(m.value())
        except msgspec.DecodeError:
            a = None
        if not isinstance(a, dict) or not a.get("alert_id") or not a.get("seller_id"):
            log.warning("unusable alert at %s[%s]@%s skipped", m.topic(), m.partition(), m.offset())
            continue
        alerts.append(a)
        kept.append(m)
    return alerts_table(alerts, [m.topic() for m in kept], [m.partition() for m in kept], [m.offset() for m in kept])


def alerts_table(
    alerts: Iterable[dict[str, Any]], topics: list[str], partitions: list[int], offsets: list[int]
) -> pa.Table:
    cols = list(zip(*[alert_row(a) for a in alerts])) or [[] for _ in range(23)]
    arrays = [pa.array(list(c), f.type if f.name != "at" else pa.int64()) for c, f in zip(cols, ALERT_SCHEMA)]
    arrays[4] = arrays[4].cast(pa.timestamp("ms", tz="UTC"))
    arrays += [pa.array(topics, pa.string()), pa.array(partitions, pa.uint16()), pa.array(offsets, pa.uint64())]
    return pa.Table.from_arrays(arrays, schema=ALERT_SCHEMA)
