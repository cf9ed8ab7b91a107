"""Named queries (``clickhouse/queries/<name>.sql``). Every report is defined once, with its range and
time zone as parameters; the API and the benchmarks both call ``report``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import available_timezones

from clickhouse import session_reports
from clickhouse.client import get_client
from clickhouse.session_cap import SESSION_MAX_ITEMS
from livemetrics.contract import money_text
from livemetrics.settings import Settings

REPORTS = ("hourly", "categories", "offers", "funnel", "payment-methods", "error-trends")
FUNNEL_STEPS = ("visit", "product", "checkout", "payment", "purchase")
# Error codes per day (error-trends) and payment methods (payment-methods) a report names; the rest of each
# is one `~other` row: senders with a public browser key can invent a new one per event.
REPORT_MAX_VALUES = 20


class QueryError(ValueError):
    """Bad report parameters (unknown time zone, empty range, ...)."""


@cache
def sql(name: str) -> str:
    try:
        return resources.files("clickhouse.queries").joinpath(f"{name}.sql").read_text()
    except FileNotFoundError:
        raise QueryError(f"unknown query {name!r}") from None


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_tz(tz: str) -> str:
    # The names available_timezones() lists (the API's OpenAPI enum), not whatever ZoneInfo can load: it
    # also loads files ClickHouse refuses (right/UTC: a 500) and fails on overlong names with OSError.
    if tz not in _zones():
        raise QueryError(f"unknown time zone {tz[:100]!r}: use an IANA name such as Europe/Berlin")
    return tz


def epoch_ms(d: datetime) -> int:
    return int((d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp() * 1000)


def text(settings: Settings, name: str, substitute: dict[str, str] | None = None) -> str:
    """A named query's text; ``substitute`` fills identifiers and fragments, then {db}."""
    out = sql(name)
    for k, v in (substitute or {}).items():
        out = out.replace("{" + k + "}", v)
    return out.replace("{db}", settings.clickhouse_database).replace("{session_max_items}", str(SESSION_MAX_ITEMS))


def run(settings: Settings, name: str, substitute: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    """Run a named query; ``substitute`` fills identifiers ({db} always); returns rows as dicts."""
    if "tz" in params:
        check_tz(params["tz"])
    res = get_client(settings).query(text(settings, name, substitute), parameters=params)
    cols = res.column_names
    return [dict(zip(cols, [_plain(v) for v in row])) for row in res.result_rows]


def report(
    settings: Settings, name: str, seller_id: str, start: datetime, end: datetime, tz: str = "UTC"
) -> dict[str, Any]:
    """One report for a seller and range ``[start, end)`` in time zone ``tz``: ``{"rows": [...], ...}``."""
    if name not in REPORTS:
        raise QueryError(f"unknown report {name!r}; one of: {', '.join(REPORTS)}")
    check_tz(tz)
    if start >= end:
        raise QueryError("`from` must be before `to`")
    p = {"seller_id": seller_id, "from_ms": epoch_ms(start), "to_ms": epoch_ms(end), "tz": tz}
    if name == "hourly":
        return {"rows": _hourly(settings, p)}
    if name in session_reports.POPULAR:  # categories and offers: one metric over a different dimension
        return {"rows": session_reports.popular(settings, name, seller_id, p["from_ms"], p["to_ms"])}
    if name == "funnel":
        ended = session_reports.funnel(settings, seller_id, p["from_ms"], p["to_ms"])  # by furthest step
        reached = [sum(n for step, n in ended.items() if step >= i) for i in range(len(FUNNEL_STEPS))]
        rows = []
        for i, step in enumerate(FUNNEL_STEPS):
            rows.append(
                {
                    "step": step,
                    "sessions": reached[i],
                    "conversion_from_previous": _ratio(reached[i], reached[max(i - 1, 0)]),
                    "conversion_from_start": _ratio(reached[i], reached[0]),
                    # abandonment: ended there without purchasing (purchase is the end)
                    "abandoned": ended[i] if step != "purchase" else 0,
                }
            )
        return {"rows": rows}
    if name == "payment-methods":
        return {"rows": run(settings, "payment_methods", max_values=REPORT_MAX_VALUES, **p)}
    trends = run(settings, "error_trends", max_values=REPORT_MAX_VALUES, **p)
    return {"rows": trends, "top_causes": run(settings, "error_causes", **p)}


def _hourly(settings: Settings, p: dict[str, Any]) -> list[dict[str, Any]]:
    """The hourly report: cells whose sessions are the sum of their hours' folded counts (hourly.sql), the
    others' figures from their hours' states merged (hourly_merged.sql, same cells)."""
    rows = run(settings, "hourly", **p)
    merge = [h for r in rows for h in r["merge_hours"]]
    merged = {}
    if merge:
        merged = {(r["weekday"], r["hour_of_day"]): r for r in run(settings, "hourly_merged", hours=merge, **p)}
    out = []
    for r in rows:
        r = merged.get((r["weekday"], r["hour_of_day"]), r)
        out.append({"weekday": r["weekday"], "hour": r["hour_of_day"], **{k: r[k] for k in _HOURLY_FIGURES}})
    return out


_HOURLY_FIGURES = ("page_views", "sessions", "checkouts", "purchases")


def folded_to(settings: Settings) -> int:
    """The session fold's watermark (epoch seconds): session_sums includes every session_updates row
    inserted before it. 0 before the first fold."""
    (row,) = get_client(settings).query(text(settings, "fold_watermark")).result_rows
    return int(row[0])


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):  # money (sums are exact): a decimal string, never a float
        return money_text(v)
    if isinstance(v, dict):  # e.g. revenue per currency
        return {k: _plain(x) for k, x in v.items()}
    return v
