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
for a few, from ``session_folded`` for more: a count of the live rows picks. With the table in use and more
than session_live_cache.CACHE_MIN_ROWS live rows, the live part is shared by the three reports: a fill made
once per watermark (clickhouse/session_live_cache.py) plus the sessions of the parts inserted since it
(``session_live_cached.sql``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from clickhouse import query, session_fold, session_live_cache
from livemetrics.settings import Settings

log = logging.getLogger(__name__)

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
# Where a report starts: the watermark, the seller's live rows (counted up to
# max(FEW_LIVE_ROWS, session_live_cache.CACHE_MIN_ROWS) + 1), the marker of session_folded_join (the watermark
# up to which it holds every entry, and the id of the rebuild that wrote it: '' when the table is not used or
# has no marker), and the seller's fill of the shared live part at this watermark and rebuild (0: none), its
# block number and the seller's rows in newer parts (clickhouse/session_live_cache.py)
Start = tuple[int, int, int, str, int, int, int]
# A start naming a fill is reused at most this many seconds after it was read (session_live_cache drops a
# fill DROP_SUPERSEDED_S after a newer one was made)
REUSE_FILL_S = 10.0
# (database, seller) -> (time.monotonic() of the check, its Start, the fold's writes it held at with chdb:
# session_fold.writes, None if a write was under way) of the seller's last report in this process (the
# watermark is one database's: only what was read from the same one proves anything)
_seen: dict[tuple[str, str, str], tuple[float, Start, tuple[int, int] | None]] = {}
_SEEN_MAX = 10_000
# The refill after a fold round (refill_after_fold) starts no fill after this many seconds: a fill takes 0.6-1.0
# s at ~100,000 live sessions (BENCHMARKS.md, eighteenth session), so a round's refill ends well within the
# fold's 30-s interval; the sellers left are filled by their next report
REFILL_BUDGET_S = 10.0
# (ClickHouse URL, database) -> the refill thread of the last fold round
_refilling: dict[tuple[str, str], threading.Thread] = {}
_refilling_lock = threading.Lock()


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
        and (seen[1][4] == 0 or time.monotonic() - seen[0] <= REUSE_FILL_S)
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
        if _needs_fill(settings, start):
            if start[4] == 0:  # no fill at this watermark: this report makes it (the other two wait for it)
                start, held_at = _fill(settings, seller_id)
                _remember(key, start, held_at)
            else:  # the fill holds (this report adds its newer rows): replaced in the background
                _fill_later(settings, seller_id)
        watermark, live_rows, _, join_id, fill, fill_blocks, _ = start
        in_memory = _in_memory(settings, start)
        params: dict[str, Any] = {"seller_id": seller_id, "from_ms": from_ms, "to_ms": to_ms, "fold_lo": watermark}
        params["days_from"], params["days_to"] = day_span(from_ms, to_ms)
        # session_live.sql first: it holds the live sessions' fragment, which holds the states fragment,
        # which holds the report's {dims}
        fragments = {"session_live": query.sql("session_live")}
        if in_memory and fill:
            # the shared live part: the fill's sums plus session_live.sql over the sessions of newer parts
            fragments = {
                "session_live": query.sql("session_live_cached"),
                "session_live_newer": query.sql("session_live"),
                "live_sessions": query.sql("session_live_inc"),
                "part_block": session_live_cache.PART_BLOCK,
            }
            params |= {"fill": fill, "fill_blocks": fill_blocks}
        elif in_memory:
            fragments["live_sessions"] = query.sql("session_live_join")
        else:
            states = "session_states_few" if live_rows <= FEW_LIVE_ROWS else "session_states_many"
            fragments |= {"live_sessions": query.sql("session_live_pass"), "folded_states": query.sql(states)}
        rows = query.run(settings, name, {**fragments, **sub}, **params)
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


# The last UTC day start a DateTime holds (2106-02-06); day_span's bounds stay within [0, it]
_LAST_DAY_S = (2**32 - 1) // 86_400 * 86_400


def day_span(from_ms: int, to_ms: int) -> tuple[int, int]:
    """The whole UTC days [days_from, days_to) (epoch seconds) of a report's range, whose folded sums and page
    views it reads from the day sums (migration 018) instead of their 24 hours each: the days every hour of
    which the range counts (an hour counts when it starts at or after the range's start hour and before
    its end, popular.sql); the hours before days_from and from days_to on are read hour by hour. With no
    whole day in the range both are the end of its last hour, so the hours cover it all."""
    first_hour = from_ms // 3_600_000 * 3600
    end_hour = -(-to_ms // 3_600_000) * 3600  # the hours h with h * 1000 < to_ms end here
    days_from, days_to = -(-first_hour // 86_400) * 86_400, end_hour // 86_400 * 86_400
    if days_from >= days_to:
        days_from = days_to = end_hour
    return min(max(days_from, 0), _LAST_DAY_S), min(max(days_to, 0), _LAST_DAY_S)


def _remember(key: tuple[str, str, str], start: Start, held_at: tuple[int, int] | None) -> None:
    if len(_seen) >= _SEEN_MAX:
        _seen.clear()
    _seen[key] = (time.monotonic(), start, held_at)


def _in_memory(settings: Settings, start: Start) -> bool:
    """The table is used (settings.session_states_in_memory) and session_folded_join holds every folded state as of the watermark: its marker (written by a rebuild,
    then moved on by every fold step after its entries, clickhouse/session_fold.py) is at or past it."""
    watermark, _, join_to, join_id = start[:4]
    return settings.session_states_in_memory and join_id != "" and join_to >= watermark


def _start(settings: Settings, seller_id: str) -> Start:
    """The watermark; whether at most FEW_LIVE_ROWS of the seller's session_updates rows were inserted
    since it (for a few, session_live_pass.sql looks their sessions' folded states up in session_state by
    key; for more, it makes one pass over the seller's session_folded rows: both hold the same states,
    migration 011); and the marker of session_folded_join, which session_live_join.sql reads instead when
    it is at or past the watermark (zeros when settings.session_states_in_memory is off). Then what the
    shared live part needs (clickhouse/session_live_cache.py): the seller's fill at this watermark and
    rebuild of session_folded_join (0: none), its block number and, only when there is one, the seller's
    rows in newer parts (counted up to REFILL_ROWS + 1)."""
    # the marker of session_folded_join (session_fold.MARKER: its version, and its id once checked)
    marker = (
        ", " + session_fold.MARKER.format(db="{db}")
        if settings.session_states_in_memory
        else ", toUInt32(0) AS join_to, '' AS join_id"
    )
    fragments = {
        "fold_watermark": query.sql("fold_watermark"),
        "join_marker": marker,
        "few_rows": str(max(FEW_LIVE_ROWS, session_live_cache.CACHE_MIN_ROWS)),
        "part_block": session_live_cache.PART_BLOCK,
        "fill_max_age_s": str(session_live_cache.FILL_MAX_AGE_S),
        "refill_rows": str(session_live_cache.REFILL_ROWS),
    }
    (row,) = query.run(settings, "session_live_rows", fragments, seller_id=seller_id, db=settings.clickhouse_database)
    join_id = str(row["join_id"])
    # a fill made with another rebuild of session_folded_join (or with none) is not this start's
    fill = int(row["fill"]) if join_id != "" and str(row["fill_join_id"]) == join_id else 0
    return (
        int(row["watermark"]),
        int(row["rows"]),
        int(row["join_to"]),
        join_id,
        fill,
        int(row["fill_blocks"]) if fill else 0,
        int(row["newer"]) if fill else 0,
    )


def _read_start(settings: Settings, seller_id: str) -> tuple[Start, tuple[int, int] | None]:
    """A start read now, and with chdb the fold's writes it holds at (None when a write was under way)."""
    if not settings.clickhouse_embedded:
        return _start(settings, seller_id), None
    now = session_fold.writes(settings)
    start = _start(settings, seller_id)
    return start, now if now[0] == 0 and session_fold.writes(settings) == now else None


def _needs_fill(settings: Settings, start: Start) -> bool:
    """The live part is shared (a fill) when the folded states are in memory and the seller has at least
    CACHE_MIN_ROWS rows since the watermark; a new fill when none holds this start or too many rows came
    after it."""
    _, live_rows, _, _, fill, _, newer = start
    return (
        _in_memory(settings, start)
        and live_rows > session_live_cache.CACHE_MIN_ROWS
        and (fill == 0 or newer > session_live_cache.REFILL_ROWS)
    )


def _fill_later(settings: Settings, seller_id: str) -> None:
    """A new fill on a thread of its own, unless one of the seller's is under way in this process."""
    if session_live_cache.lock(settings, seller_id).locked():
        return

    def run() -> None:
        try:
            start, held_at = _fill(settings, seller_id)
            _remember((settings.clickhouse_url, settings.clickhouse_database, seller_id), start, held_at)
        except Exception:  # noqa: BLE001 - the next report that needs one tries again
            log.exception("refilling the shared live part of %s failed", seller_id)

    threading.Thread(target=run, name="session-live-fill", daemon=True).start()


def refill_after_fold(settings: Settings) -> threading.Thread | None:
    """After a fold round (the fold thread: session_fold.refill_after_fold): the sellers whose reports used a
    fill lately get one at the new watermark, so that their next report finds it (up to
    session_live_cache.REFILL_SELLERS of them, the most recent first). On a thread of its own, returned (None
    when the previous round's is still under way: this round's is left out), so that the fold round is not
    held up: a fill costs 0.6-1.0 s at ~100,000 live sessions and the fold thread made up to 20 of them in a
    row (~20 s against its 30-s interval). No fill is started after REFILL_BUDGET_S: the sellers left get
    theirs from their next report, as after a restart."""
    key = (settings.clickhouse_url, settings.clickhouse_database)
    with _refilling_lock:
        running = _refilling.get(key)
        if running is not None and running.is_alive():
            log.info("the shared live part's refill of the last fold round is still under way: none this round")
            return None
        thread = threading.Thread(target=_refill, args=(settings,), name="session-live-refill", daemon=True)
        _refilling[key] = thread
        thread.start()
    return thread


def _refill(settings: Settings) -> None:
    """refill_after_fold's thread: a failure is logged (the seller's next report fills), never raised."""
    deadline = time.monotonic() + REFILL_BUDGET_S
    try:
        sellers = session_live_cache.watched(settings)
    except Exception:  # noqa: BLE001 - the next round tries again; reports fill what is missing meanwhile
        log.exception("listing the sellers whose shared live part to refill failed")
        return
    for done, seller_id in enumerate(sellers):
        if time.monotonic() >= deadline:
            log.info(
                "refill after the fold: %d of %d sellers left to their next report (its %.0f s spent)",
                len(sellers) - done,
                len(sellers),
                REFILL_BUDGET_S,
            )
            return
        try:
            _fill(settings, seller_id)
        except Exception:  # noqa: BLE001 - that seller's next report fills; the others go on
            log.exception("refilling the shared live part of %s after the fold failed", seller_id)


def _fill(settings: Settings, seller_id: str) -> tuple[Start, tuple[int, int] | None]:
    """Make the seller's fill at the current watermark (one at a time per seller in this process: the
    others of a dashboard's three reports wait and take it), and return the start read after it."""
    with session_live_cache.lock(settings, seller_id):
        start, held_at = _read_start(settings, seller_id)
        if not _needs_fill(settings, start):
            return start, held_at  # another report filled meanwhile (or none is needed now)
        watermark, _, _, join_id, _, _, _ = start
        fill, blocks = session_live_cache.fill(settings, seller_id, watermark)
        after, held_at = _read_start(settings, seller_id)
        # the fill read session_folded_join as of this watermark and rebuild only if both held throughout
        if after[0] != watermark or after[3] != join_id or not _in_memory(settings, after):
            session_live_cache.discard(settings, fill)
            return after, held_at
        session_live_cache.register(settings, seller_id, watermark, join_id, blocks, fill)
        return (*after[:4], fill, blocks, 0), held_at
