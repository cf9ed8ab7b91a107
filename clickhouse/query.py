"""Named queries (``clickhouse/queries/<name>.sql``). Every report is defined once, with its range and
time zone as parameters; live and historical views both call ``run``."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clickhouse.client import get_client
from livemetrics.settings import Settings


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


def run(settings: Settings, name: str, **params: Any) -> list[dict[str, Any]]:
    """Run a named query; returns rows as dicts."""
    if "tz" in params:
        check_tz(params["tz"])
    if "from" in params and "to" in params and params["from"] >= params["to"]:
        raise QueryError("`from` must be before `to`")
    text = sql(name).replace("{db}", settings.clickhouse_database)
    res = get_client(settings).query(text, parameters=params)
    cols = res.column_names
    return [dict(zip(cols, _plain(row))) for row in res.result_rows]


def _plain(row):
    return [v.isoformat() if isinstance(v, datetime) else v for v in row]
