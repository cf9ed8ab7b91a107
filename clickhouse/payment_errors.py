"""The payment-error history (``payment_errors``, fed by the sink from ``payment-alerts``) and the status a
seller gives each alert (``payment_error_status``: every change kept, the newest wins)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

from clickhouse.client import INSERT_SETTINGS, get_client
from clickhouse.query import epoch_ms, sql
from livemetrics.contract import money_text
from livemetrics.settings import Settings

STATUSES = ("open", "contacted", "resolved")


class CursorError(ValueError):
    """The cursor is not one this API handed out."""


def encode_cursor(at_ms: int, alert_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at_ms, alert_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The (time, alert id) an ``encode_cursor`` made; anything else, however it parses, is refused: an
    instant outside Int64 milliseconds or an alert id of another type would otherwise page to nothing."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, RecursionError):  # JSON nested past the decoder's limit raised RecursionError: a 500
        value = None
    match value:
        case [int() as at_ms, str() as alert_id] if type(at_ms) is int and 0 <= at_ms < 2**63 and len(alert_id) <= 200:
            return at_ms, alert_id
    raise CursorError("`cursor` is not valid: pass the `next_cursor` of the previous page")


def _loads(s: str) -> Any:
    return json.loads(s) if s else None


def _iso(d: datetime | None) -> str | None:
    if d is None or d.timestamp() <= 0:
        return None
    d = d if d.tzinfo else d.replace(tzinfo=UTC)
    return d.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def item(r: dict[str, Any]) -> dict[str, Any]:
    """A stored row back in the alert's shape (streams/alerts.py) plus its status."""
    out = {
        "alert_id": r["alert_id"],
        "kind": r["kind"],
        "seller_id": r["seller_id"],
        "session_id": r["session_id"],
        "at": _iso(r["at"]),
        "customer": {"email": r["customer_email"], "phone": r["customer_phone"], "name": r["customer_name"]},
        "order": {
            "order_id": r["order_id"],
            "amount": money_text(r["amount"]),
            "currency": r["currency"],
            "items": _loads(r["items"]),
        },
        "payment": {
            "method": r["payment_method"],
            "error_code": r["error_code"],
            "error_message": r["error_message"],
            "details": _loads(r["error_details"]),
        },
        "client": {
            "ip": r["ip"] or None,
            "browser": r["browser"],
            "os": r["os"],
            "device": r["device"],
            "user_agent": r["user_agent"],
        },
        "context": _loads(r["context"]) or {},
        "status": r["status"],
        "note": r["note"],
        "status_at": _iso(r["status_at"]),
    }
    extra = _loads(r["extra"])
    if isinstance(extra, dict):
        out.update({k: v for k, v in extra.items() if k not in out})
    return out


def page(
    settings: Settings,
    seller_id: str,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
    method: str | None = None,
    error_code: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Newest first; ``next_cursor`` is None on the last page."""
    params: dict[str, Any] = {"seller_id": seller_id, "limit": limit + 1}
    conds = []
    if cursor:
        params["c_at"], params["c_id"] = decode_cursor(cursor)
        conds.append("(at, alert_id) < (fromUnixTimestamp64Milli({c_at:Int64}, 'UTC'), {c_id:String})")
    if method:
        params["method"] = method
        conds.append("payment_method = {method:String}")
    if error_code:
        params["error_code"] = error_code
        conds.append("error_code = {error_code:String}")
    if start:
        params["from_ms"] = epoch_ms(start)
        conds.append("at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')")
    if end:
        params["to_ms"] = epoch_ms(end)
        conds.append("at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')")
    status_filter = ""
    if status:
        params["status"] = status
        status_filter = "AND if(s.status = '', 'open', s.status) = {status:String}"
    text = (
        sql("payment_errors_page")
        .replace("{db}", settings.clickhouse_database)
        .replace("{event_filters}", "".join(f" AND {c}" for c in conds))
        .replace("{status_filter}", status_filter)
    )
    res = get_client(settings).query(text, parameters=params)
    rows = [dict(zip(res.column_names, row)) for row in res.result_rows]
    items = [item(r) for r in rows[:limit]]
    nxt = None
    if len(rows) > limit:
        last = rows[limit - 1]
        nxt = encode_cursor(epoch_ms(last["at"]), last["alert_id"])
    return {"items": items, "next_cursor": nxt}


def exists(settings: Settings, seller_id: str, alert_id: str) -> bool:
    db = settings.clickhouse_database
    return bool(
        get_client(settings)
        .query(
            f"SELECT count() FROM {db}.payment_errors WHERE seller_id = {{s:String}} AND alert_id = {{a:String}}",
            parameters={"s": seller_id, "a": alert_id},
        )
        .result_rows[0][0]
    )


def set_status(settings: Settings, seller_id: str, alert_id: str, status: str, note: str, by: str) -> dict[str, Any]:
    if status not in STATUSES:
        raise ValueError(f"`status` must be one of {', '.join(STATUSES)}, not {status!r}")
    now = datetime.fromtimestamp(time.time(), UTC)
    get_client(settings).insert(
        f"{settings.clickhouse_database}.payment_error_status",
        [[seller_id, alert_id, status, note, now, by]],
        column_names=["seller_id", "alert_id", "status", "note", "updated_at", "updated_by"],
        settings=INSERT_SETTINGS,
    )
    return {"alert_id": alert_id, "status": status, "note": note, "status_at": _iso(now)}
