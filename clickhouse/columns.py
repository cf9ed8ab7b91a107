"""Kafka messages -> Arrow tables, column by column (no per-row dicts or tuples).

Raw events: the sink lets ClickHouse parse them (``events_json``, with what ``events_read`` derives
from the contract); only the Kafka position's columns are named here. Alerts from ``payment-alerts``
(built in ``streams/alerts.py``) map to ``payment_errors``; the sink inserts those as Arrow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import pyarrow as pa

from livemetrics.contract import MONEY_MAX, MONEY_SCALE

log = logging.getLogger("livemetrics.sink")
KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset")
KAFKA_TYPES = (pa.string(), pa.uint16(), pa.uint64())
_json = msgspec.json.Encoder()
MONEY_ARROW = pa.decimal128(18, MONEY_SCALE)  # contract.MONEY_TYPE
_NO_MONEY = Decimal(0)
_MONEY_STEP = Decimal(1).scaleb(-MONEY_SCALE)


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
