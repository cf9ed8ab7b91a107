"""Historical reports from ClickHouse, each with its range and time zone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import SellerId, SettingsDep
from api.responses import AUTH, SELLER
from clickhouse import query as queries

router = APIRouter(tags=["reports"], responses=SELLER, dependencies=AUTH)

REPORTS = queries.REPORTS
# Years a report can cover: ClickHouse's DateTime64 holds 1900-2299 (outside it, it clamps), and Python
# cannot even convert 0001-01-01T00:00+01:00 to UTC (a 500 before this bound). The year as written is
# checked, which the OpenAPI pattern below can state; an offset may move the instant an hour or so past
# either end, which ClickHouse clamps (tests/integration/test_api_odd_parameters.py).
YEARS = (1900, 2299)
_YEAR_PATTERN = "^(19[0-9][0-9]|2[0-2][0-9][0-9])-"
# OpenAPI only: what ``parse_instant`` and ``check_tz`` accept, for readers and generated clients.
INSTANT = {
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": _YEAR_PATTERN},
        {"type": "string", "format": "date", "pattern": _YEAR_PATTERN},
        {"const": "", "description": "the default"},
    ]
}
TIME_ZONES = {"enum": sorted(available_timezones())}


def parse_instant(v: str, name: str) -> datetime:
    """An ISO 8601 query parameter as an aware datetime (UTC when no offset is given)."""
    try:
        d = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, f"`{name}` is not an ISO 8601 date or time: {v[:100]!r}") from None
    if not YEARS[0] <= d.year <= YEARS[1]:
        raise HTTPException(422, f"`{name}` must be between 1900-01-01 and 2299-12-31: {v[:100]!r}")
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def parse_range(from_: str | None, to: str | None, max_days: int) -> tuple[datetime, datetime]:
    """The range as naive UTC datetimes; at most ``max_days`` long (one query must not scan all history)."""
    parse = parse_instant

    end = parse(to, "to") if to else datetime.now(UTC)
    start = parse(from_, "from") if from_ else end - timedelta(days=min(7, max_days))
    if start >= end:
        raise HTTPException(422, "`from` must be before `to`")
    if end - start > timedelta(days=max_days):
        raise HTTPException(
            422,
            f"the range from `from` to `to` is {(end - start) / timedelta(days=1):.1f} days; "
            f"at most {max_days} days (LIVEMETRICS_REPORT_MAX_DAYS) per report",
        )
    return start.astimezone(UTC).replace(tzinfo=None), end.astimezone(UTC).replace(tzinfo=None)


@router.get("/v1/sellers/{seller_id}/reports/{report}")
async def report(
    seller_id: SellerId,
    report: Annotated[str, Path(json_schema_extra={"enum": list(REPORTS)})],
    settings: SettingsDep,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description="ISO 8601, before `to` and at most "
            "LIVEMETRICS_REPORT_MAX_DAYS (400) days before it (default: 7 days before `to`)",
            json_schema_extra=INSTANT,
        ),
    ] = None,
    to: Annotated[str | None, Query(description="ISO 8601 (default: now)", json_schema_extra=INSTANT)] = None,
    tz: Annotated[str, Query(description="IANA time zone", json_schema_extra=TIME_ZONES)] = "UTC",
) -> dict:
    """A historical report (hourly, categories, offers, funnel, payment-methods, error-trends) for a range, in a time zone."""
    if report not in REPORTS:
        raise HTTPException(404, f"unknown report {report!r}; one of: {', '.join(REPORTS)}")
    start, end = parse_range(from_, to, settings.report_max_days)
    try:
        body = await asyncio.to_thread(queries.report, settings, report, seller_id, start, end, tz)
    except queries.QueryError as exc:
        raise HTTPException(422, str(exc)) from None
    return {
        "seller_id": seller_id,
        "report": report,
        "from": start.isoformat() + "Z",
        "to": end.isoformat() + "Z",
        "tz": tz,
        **body,
    }
