"""The session reports (categories, offers, funnel): the sums folded up to the watermark
(``session_sums``, clickhouse/session_fold.py) plus how the sessions with rows inserted since change them
(docs/clickhouse.md, "Reports").

One query per report (``popular.sql`` / ``funnel.sql``, with ``session_live.sql`` as its live part) adds
both in ClickHouse and returns at most ``POPULAR_ROWS`` rows (popular) or five (funnel).
``session_live.sql`` does the arithmetic of ``session_deltas.sql`` (the fold's form) for one seller and
range; the oracle tests check both against the same events. (Sending the changed sessions to Python
instead cost more than the query itself once they were thousands: BENCHMARKS.md, 2026-12-05.) The live
sessions' folded states come from the in-memory table ``session_folded_join`` (``session_live_join.sql``)
when its marker says it holds every entry up to the watermark (settings.session_states_in_memory; the fold
keeps it, clickhouse/session_fold.py); otherwise (``session_live_pass.sql``) from ``session_state`` by key
for a few, from ``session_folded`` for more: a count of the live rows picks.
"""

from __future__ import annotations

import time
from typing import Any

from clickhouse import query, session_fold
from livemetrics.settings import Settings

POPULAR = {
    "categories": {"dim": "category", "kind": "category", "dims": "categories"},
    "offers": {"dim": "offer_id", "kind": "offer", "dims": "offers"},
}
FUNNEL = {"dims": "categories", "kind": "furthest"}  # dims: any; the funnel reads no items
# The categories and offers reports' rows: the items with the most views (popular.sql cuts in ClickHouse)
POPULAR_ROWS = 100
# Up to this many session_updates rows since the watermark, session_live_pass.sql (session_folded_join not
# in use) looks their sessions' states up in session_state by key; more, it reads them from session_folded
# (BENCHMARKS.md, 2026-12-05)
FEW_LIVE_ROWS = 100
# A report starts from what the previous report of the same seller saw at its end (the watermark and the
# seller's live rows: the check after its query) when that was at most this many seconds ago, instead of
# asking again, when it read more than FEW_LIVE_ROWS (the pass, fit for any count): one query less of three
# (BENCHMARKS.md, 2026-12-06, sixth round). Exact either way: the
# watermark only grows, and the check after the query reruns it when the watermark it started from moved.
REUSE_START_S = 5.0
# Where a report starts: the watermark, the seller's live rows (counted up to FEW_LIVE_ROWS + 1), and the
# marker of session_folded_join (the watermark up to which it holds every entry, and the id of the rebuild
# that wrote it: '' when the table is not used or has no marker)
Start = tuple[int, int, int, str]
# (database, seller) -> (time.monotonic() of the check, its Start, the fold's writes it held at with chdb:
# session_fold.writes, None if a write was under way) of the seller's last report in this process (the
# watermark is one database's: only what was read from the same one proves anything)
_seen: dict[tuple[str, str, str], tuple[float, Start, tuple[int, int] | None]] = {}
_SEEN_MAX = 10_000


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
    watermark), so the watermark is read again afterwards and the query run again if it moved. The
    watermark it starts from is one read before the query: by this report, or by the check at the end of
    the seller's previous report if that was at most REUSE_START_S ago (the watermark only grows, so a
    check that finds the one the query used proves it did not move meanwhile).

    With chdb (one process per directory, so the fold is this process's: session_fold.writes counts its
    writes), a start read while the fold wrote nothing holds until it writes again: the report starts from
    it and needs no check when the fold wrote nothing from the start's read to the query's end (one
    ClickHouse query a report: BENCHMARKS.md, thirteenth session)."""
    key = (settings.clickhouse_url, settings.clickhouse_database, seller_id)
    embedded = settings.clickhouse_embedded
    seen = _seen.get(key)
    # Only a start that chose the pass is reused: the live rows may have grown since, and the lookup by key
    # a small count picks costs ~5-25 us a session (a seller's burst of 100k rows in the 5 s: seconds).
    # The in-memory table's lookup costs the same for any count.
    reuse = (
        seen is not None
        and (seen[1][1] > FEW_LIVE_ROWS or _in_memory(settings, seen[1]))
        and (embedded or time.monotonic() - seen[0] <= REUSE_START_S)
    )
    # the fold's writes (under way, count) the start holds at: None when not known to hold
    held_at: tuple[int, int] | None = None
    if embedded:
        now = session_fold.writes(settings)
        if reuse and seen is not None and seen[2] == now and now[0] == 0:
            start, held_at = seen[1], now
        else:
            start = _start(settings, seller_id)
            held_at = now if now[0] == 0 and session_fold.writes(settings) == now else None
            _remember(key, start, held_at)
    else:
        start = seen[1] if reuse and seen is not None else _start(settings, seller_id)
    for _ in range(10):
        watermark, live_rows, _, join_id = start
        in_memory = _in_memory(settings, start)
        # session_live.sql first: it holds the live sessions' fragment, which holds the states fragment,
        # which holds the report's {dims}
        fragments = {"session_live": query.sql("session_live")}
        if in_memory:
            fragments["live_sessions"] = query.sql("session_live_join")
        else:
            states = "session_states_few" if live_rows <= FEW_LIVE_ROWS else "session_states_many"
            fragments |= {"live_sessions": query.sql("session_live_pass"), "folded_states": query.sql(states)}
        rows = query.run(
            settings, name, {**fragments, **sub}, seller_id=seller_id, from_ms=from_ms, to_ms=to_ms, fold_lo=watermark
        )
        if held_at is not None and session_fold.writes(settings) == held_at:
            return rows  # the fold wrote nothing since the start was read: it held throughout
        check_at = session_fold.writes(settings) if embedded else None
        start = _start(settings, seller_id)  # the check; also where the next report or run starts
        held_at = check_at if check_at and check_at[0] == 0 and session_fold.writes(settings) == check_at else None
        _remember(key, start, held_at)
        # the table rebuilt (or emptied) meanwhile: the query may have read it half filled
        if start[0] == watermark and (not in_memory or start[3] == join_id):
            return rows
    raise RuntimeError("session fold watermark kept moving while the report ran")


def _remember(key: tuple[str, str, str], start: Start, held_at: tuple[int, int] | None) -> None:
    if len(_seen) >= _SEEN_MAX:
        _seen.clear()
    _seen[key] = (time.monotonic(), start, held_at)


def _in_memory(settings: Settings, start: Start) -> bool:
    """The table is used (settings.session_states_in_memory) and session_folded_join holds every folded state as of the watermark: its marker (written by a rebuild,
    then moved on by every fold step after its entries, clickhouse/session_fold.py) is at or past it."""
    watermark, _, join_to, join_id = start
    return settings.session_states_in_memory and join_id != "" and join_to >= watermark


def _start(settings: Settings, seller_id: str) -> Start:
    """The watermark; whether at most FEW_LIVE_ROWS of the seller's session_updates rows were inserted
    since it (for a few, session_live_pass.sql looks their sessions' folded states up in session_state by
    key; for more, it makes one pass over the seller's session_folded rows: both hold the same states,
    migration 011); and the marker of session_folded_join, which session_live_join.sql reads instead when
    it is at or past the watermark (zeros when settings.session_states_in_memory is off)."""
    # the marker of session_folded_join (session_fold.MARKER: its version, and its id once checked)
    marker = (
        ", " + session_fold.MARKER.format(db="{db}")
        if settings.session_states_in_memory
        else ", toUInt32(0) AS join_to, '' AS join_id"
    )
    fragments = {"fold_watermark": query.sql("fold_watermark"), "join_marker": marker, "few_rows": str(FEW_LIVE_ROWS)}
    (row,) = query.run(settings, "session_live_rows", fragments, seller_id=seller_id, db=settings.clickhouse_database)
    return int(row["watermark"]), int(row["rows"]), int(row["join_to"]), str(row["join_id"])
