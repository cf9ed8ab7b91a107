"""The webhook deliveries the notifier owes and has made (``notification_deliveries``, migration 009).

Every change is a new row version (``version``: nanoseconds), the newest per delivery wins: recording an
attempt never reads first, so it costs one small insert."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from clickhouse.client import INSERT_SETTINGS, get_client
from clickhouse.query import run
from livemetrics.settings import Settings

STATUSES = ("pending", "delivered", "failed")
COLUMNS = [
    "seller_id",
    "delivery_id",
    "alert_id",
    "alert_kind",
    "channel_id",
    "target",
    "body",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "next_at",
    "updated_at",
    "version",
]


@dataclass(frozen=True)
class Delivery:
    seller_id: str
    delivery_id: str
    alert_id: str
    alert_kind: str
    channel_id: str
    target: str
    body: bytes  # the JSON POSTed, exactly as signed
    created_ms: int  # when the alert was first owed to this channel: retries stop notify_retry_for_s later
    status: str = "pending"
    attempts: int = 0
    last_error: str = ""
    next_ms: int = 0
    # Not stored: when the alert's event reached the gateway and when this notifier took the delivery up
    # (epoch ms), for the stage timings of a first attempt (api/notify/timing.py); 0 when loaded from here.
    at_ms: int = 0
    owed_ms: int = 0
    version: int = 0  # as read from here (0: not read from here); a write takes a new one

    def but(self, **changes: Any) -> Delivery:
        return replace(self, **changes)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def versions(n: int) -> list[int]:
    """Row versions for ``n`` changes happening now, in order."""
    now = time.time_ns()
    return [now + i for i in range(n)]


def record(settings: Settings, deliveries: list[Delivery], at: list[int] | None = None) -> None:
    """Store these versions of the deliveries (durable when it returns). ``at``: each row's version, taken
    when the change happened (``versions``), when rows are written later than that; default: now, in order."""
    if not deliveries:
        return
    at = at or versions(len(deliveries))
    now = time.time_ns()
    rows = [
        [
            d.seller_id,
            d.delivery_id,
            d.alert_id,
            d.alert_kind,
            d.channel_id,
            d.target,
            d.body.decode(),
            d.status,
            d.attempts,
            d.last_error[:1000],
            _dt(d.created_ms),
            _dt(d.next_ms or d.created_ms),
            _dt(now // 1_000_000),
            version,
        ]
        for d, version in zip(deliveries, at, strict=True)
    ]
    get_client(settings).insert(
        f"{settings.clickhouse_database}.notification_deliveries", rows, column_names=COLUMNS, settings=INSERT_SETTINGS
    )


def _delivery(r: dict[str, Any]) -> Delivery:
    return Delivery(
        seller_id=r["seller_id"],
        delivery_id=r["delivery_id"],
        alert_id=r["alert_id"],
        alert_kind=r["alert_kind"],
        channel_id=r["channel_id"],
        target=r["target"],
        body=r["body"].encode(),
        created_ms=int(r["created_ms"]),
        status=r["status"],
        attempts=int(r["attempts"]),
        last_error=r["last_error"],
        next_ms=int(r["next_ms"]),
        version=int(r.get("version") or 0),
    )


def pending(settings: Settings) -> list[Delivery]:
    return [_delivery(r) for r in run(settings, "notify_pending")]


def pending_since(settings: Settings, since: int) -> list[Delivery]:
    """Pending deliveries whose row has a version newer than ``since`` (ns)."""
    return [_delivery(r) for r in run(settings, "notify_pending_since", since=since)]


def one(settings: Settings, seller_id: str, delivery_id: str) -> Delivery | None:
    rows = run(settings, "notify_delivery", seller_id=seller_id, delivery_id=delivery_id)
    return _delivery(rows[0]) if rows else None


def page(settings: Settings, seller_id: str, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The seller's deliveries, newest first (without their bodies)."""
    params: dict[str, Any] = {"seller_id": seller_id, "limit": limit}
    if status:
        params["status"] = status
    rows = run(
        settings,
        "notify_deliveries_page",
        {"status_filter": "AND status = {status:String}" if status else ""},
        **params,
    )
    return [
        {
            "delivery_id": r["delivery_id"],
            "alert_id": r["alert_id"],
            "alert_kind": r["alert_kind"],
            "channel_id": r["channel_id"],
            "target": r["target"],
            "status": r["status"],
            "attempts": r["attempts"],
            "last_error": r["last_error"],
            "created_at": _iso(r["created_ms"]),
            "next_attempt_at": _iso(r["next_ms"]) if r["status"] == "pending" else None,
            "updated_at": _iso(r["updated_ms"]),
        }
        for r in rows
    ]


def _iso(ms: int) -> str:
    return _dt(int(ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
