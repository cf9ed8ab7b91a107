"""Named queries (``clickhouse/queries/<name>.sql``). Every report is defined once, with its range and
time zone as parameters; the API and the benchmarks both call ``report``."""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clickhouse.client import get_client
from livemetrics.settings import Settings

REPORTS = ("hourly", "categories", "offers", "funnel", "payment-methods", "error-trends")
FUNNEL_STEPS = ("visit", "product", "checkout", "payment", "purchase")
# categories and offers are one metric (popular.sql) over a different dimension
_POPULAR = {"categories": {"dim": "category", "kind": "category"}, "offers": {"dim": "offer_id", "kind": "offer"}}
_LIVE_UNTIL = 4_294_967_295  # the largest DateTime: every row inserted since the watermark


class QueryError(ValueError):
    """Bad report parameters (unknown time zone, empty range, ...)."""


@lru_cache(maxsize=None)
def sql(name: str) -> str:
    try:
        return resources.files("clickhouse.queries").joinpath(f"{name}.sql").read_text()
    except FileNotFoundError:
        raise QueryError(f"unknown query {name!r}") from None


def check_tz(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError(f"unknown time zone {tz!r}: use an IANA name such as Europe/Berlin") from None
    return tz


def epoch_ms(d: datetime) -> int:
    return int((d if d.tzinfo else d.replace(tzinfo=timezone.utc)).timestamp() * 1000)


def text(settings: Settings, name: str, substitute: dict[str, str] | None = None) -> str:
    """A named query's text; ``substitute`` fills identifiers and fragments, then {db}."""
    out = sql(name)
    for k, v in (substitute or {}).items():
        out = out.replace("{" + k + "}", v)
    return out.replace("{db}", settings.clickhouse_database)


def run(settings: Settings, name: str, substitute: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    """Run a named query; ``substitute`` fills identifiers ({db} always); returns rows as dicts."""
    if "tz" in params:
        check_tz(params["tz"])
    res = get_client(settings).query(text(settings, name, substitute), parameters=params)
    cols = res.column_names
    return [dict(zip(cols, [_plain(v) for v in row])) for row in res.result_rows]


def report(settings: Settings, name: str, seller_id: str, start: datetime, end: datetime, tz: str = "UTC") -> dict[str, Any]:
    """One report for a seller and range ``[start, end)`` in time zone ``tz``: ``{"rows": [...], ...}``."""
    if name not in REPORTS:
        raise QueryError(f"unknown report {name!r}; one of: {', '.join(REPORTS)}")
    check_tz(tz)
    if start >= end:
        raise QueryError("`from` must be before `to`")
    p = {"seller_id": seller_id, "from_ms": epoch_ms(start), "to_ms": epoch_ms(end), "tz": tz}
    if name == "hourly":
        rows = run(settings, "hourly", **p)
        for r in rows:
            r["hour"] = r.pop("hour_of_day")
        return {"rows": rows}
    if name in _POPULAR:
        rows = run_on_session_sums(settings, "popular", _POPULAR[name], **p)
        for r in rows:
            r["views"] = r["views"] or 0
        return {"rows": rows}
    if name == "funnel":
        (c,) = run_on_session_sums(settings, "funnel", {}, **p)
        rows, prev = [], None
        for step in FUNNEL_STEPS:
            n = c[step]
            rows.append({"step": step, "sessions": n,
                         "conversion_from_previous": _ratio(n, c["visit"] if prev is None else c[prev]),
                         "conversion_from_start": _ratio(n, c["visit"]),
                         "abandoned": c.get(f"ended_{step}", 0)})
            prev = step
        return {"rows": rows}
    if name == "payment-methods":
        return {"rows": run(settings, "payment_methods", **p)}
    return {"rows": run(settings, "error_trends", **p), "top_causes": run(settings, "error_causes", **p)}


def folded_to(settings: Settings) -> int:
    """The session fold's watermark (epoch seconds): session_sums includes every session_updates row
    inserted before it. 0 before the first fold."""
    (row,) = get_client(settings).query(text(settings, "fold_watermark")).result_rows
    return int(row[0])


def run_on_session_sums(settings: Settings, name: str, substitute: dict[str, str], seller_id: str, **params: Any) -> list[dict[str, Any]]:
    """Run a report that adds session_sums (folded up to the watermark) and the deltas of the rows
    inserted since. Exact only if the sums it read are those of that watermark: a fold that committed
    meanwhile would be counted twice, so the watermark is read again afterwards and the report re-run
    if it moved (folds run every ``session_fold_interval_s``, so once is nearly always enough)."""
    sub = {**substitute, "session_deltas": sql("session_deltas"), "session_changes": sql("session_changes"),
           "scope": "seller_id = {seller_id:String}"}
    watermark = folded_to(settings)
    for _ in range(10):
        rows = run(settings, name, sub, seller_id=seller_id, fold_lo=watermark, fold_hi=_LIVE_UNTIL, **params)
        now = folded_to(settings)
        if now == watermark:
            return rows
        watermark = now
    raise RuntimeError("session fold watermark kept moving while the report ran")


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return v
