"""The session reports (categories, offers, funnel): the sums folded up to the watermark
(``session_sums``, clickhouse/session_fold.py) plus how the sessions with rows inserted since change them
(docs/clickhouse.md, "Reports").

One query per report (``popular.sql`` / ``funnel.sql``, with ``session_live.sql`` as its live part) adds
both in ClickHouse and returns at most ``POPULAR_ROWS`` rows (popular) or five (funnel).
``session_live.sql`` does the arithmetic of ``session_deltas.sql`` (the fold's form) for one seller and
range; the oracle tests check both against the same events. (Sending the changed sessions to Python
instead cost more than the query itself once they were thousands: BENCHMARKS.md, 2026-12-05.) The live
sessions' folded states come from ``session_state`` by key for a few, from ``session_folded`` for more:
a count of the live rows picks.
"""

from __future__ import annotations

from typing import Any

from clickhouse import query
from livemetrics.settings import Settings

POPULAR = {
    "categories": {"dim": "category", "kind": "category", "dims": "categories"},
    "offers": {"dim": "offer_id", "kind": "offer", "dims": "offers"},
}
FUNNEL = {"dims": "categories", "kind": "furthest"}  # dims: any; the funnel reads no items
# The categories and offers reports' rows: the items with the most views (popular.sql cuts in ClickHouse)
POPULAR_ROWS = 100
# Up to this many session_updates rows since the watermark, session_live.sql looks their sessions' states
# up in session_state by key; more, it reads them from session_folded (BENCHMARKS.md, 2026-12-05)
FEW_LIVE_ROWS = 100


def popular(settings: Settings, name: str, seller_id: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
    """Rows of the categories or offers report: items some session that started in the range viewed."""
    sub = {**POPULAR[name], "rows": str(POPULAR_ROWS)}
    rows = _consistent(settings, "popular", sub, seller_id, from_ms, to_ms)
    rows.sort(key=lambda r: (-r["views"], -r["sessions"], r["item"]))
    return [
        {
            sub["dim"]: r["item"],
            "views": r["views"],
            "sessions": r["sessions"],
            "checkout_sessions": r["checkout_sessions"],
            "conversion": round(r["checkout_sessions"] / r["sessions"], 4),
        }
        for r in rows[:POPULAR_ROWS]
    ]


def funnel(settings: Settings, seller_id: str, from_ms: int, to_ms: int) -> dict[int, int]:
    """Sessions that started in the range, by their furthest step (0 visit .. 4 purchase)."""
    out = {step: 0 for step in range(5)}
    for r in _consistent(settings, "funnel", FUNNEL, seller_id, from_ms, to_ms):
        out[r["furthest"]] += r["sessions"]
    return out


def _consistent(settings: Settings, name: str, sub: dict[str, str], seller_id: str, from_ms: int, to_ms: int):
    """The report's rows, its folded part and its live part from the same watermark: a fold step that
    committed while the query ran would be counted twice (or its sessions' states be newer than the
    watermark), so the watermark is read again afterwards and the query run again if it moved."""
    for _ in range(10):
        watermark, states = _start(settings, seller_id)
        # session_live.sql first: it holds the states fragment, which holds the report's {dims}
        fragments = {"session_live": query.sql("session_live"), "folded_states": query.sql(states), **sub}
        rows = query.run(
            settings, name, fragments, seller_id=seller_id, from_ms=from_ms, to_ms=to_ms, fold_lo=watermark
        )
        if query.folded_to(settings) == watermark:
            return rows
    raise RuntimeError("session fold watermark kept moving while the report ran")


def _start(settings: Settings, seller_id: str) -> tuple[int, str]:
    """The watermark, and where session_live.sql reads the folded states of the sessions with rows since
    it: for a few, their session_state entries by key; for more, one pass over the seller's
    session_folded keys. Both hold the same states (migration 011)."""
    (row,) = query.run(
        settings, "session_live_rows", {"fold_watermark": query.sql("fold_watermark")}, seller_id=seller_id
    )
    return int(row["watermark"]), "session_states_few" if row["rows"] <= FEW_LIVE_ROWS else "session_states_many"
