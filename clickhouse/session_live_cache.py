"""The session reports' live part computed once and shared (docs/clickhouse.md, "Reports"): categories,
offers and funnel each added up every live session (the seller's sessions with ``session_updates`` rows since
the fold watermark), ~2-3 us each, 250-380 ms with the ~100,000 a seller sending 2,000 events/s has between
folds (BENCHMARKS.md, seventeenth session). A *fill* does that once for all three
(``session_live_fill.sql``: every live session's state as of the watermark and with its rows, both item
kinds; ``session_live_fill_deltas.sql``: what they add per kind, start hour and item) over the parts of
``session_updates`` up to a block number; a report then adds the fill's sums for its kind and range, and
computes only the sessions with rows in the parts past that block (``session_live_cached.sql``,
``session_live_inc.sql``): rows inserted since the fill, and older ones a merge joined with them, which
change nothing (the states' min, max and capped union are idempotent).

Why exact: block numbers are given to parts in the order they become visible (ClickHouse numbers an
insert's part under the lock that adds it), so every part the report sees whose newest block is at most the
fill's held rows the fill read (or a merge of them: a merge keeps the block range of what it joins), and every
other part is past it, taken by the report itself. A fill belongs to one watermark and one rebuild of
``session_folded_join`` (its ``join_id``): a report uses only a fill of the watermark and rebuild it starts
from, and its check at the end (clickhouse/session_reports.py) reruns it when either moved. A fill is
registered (``session_live_fills``) only after its two inserts, and only if the watermark and rebuild were the
same after it as before.

Memory: the tables are ClickHouse ``Memory`` tables (a restart empties them all: the next report fills
again). Fills are deleted ``DROP_SUPERSEDED_S`` after a newer fill of the seller was made, and any fill
``DROP_AFTER_S`` after it was made; reports use fills at most ``FILL_MAX_AGE_S`` old, read at most
``session_reports.REUSE_FILL_S`` before their query starts."""

from __future__ import annotations

import secrets
import threading

from clickhouse import query
from clickhouse.client import get_client
from livemetrics.settings import Settings

# Fewer of the seller's rows since the watermark than this: each report computes the live part itself (a
# fill costs more than the few sessions do)
CACHE_MIN_ROWS = 2_000
# A fill with more of the seller's rows in newer parts than this is replaced by a new one (the report adds
# them session by session, ~2-3 us each)
REFILL_ROWS = 20_000
# Reports start from the seller's newest fill at their watermark made at most this many seconds ago
FILL_MAX_AGE_S = 60
# A fill's rows are deleted this long after a newer fill of the seller was made, and at the latest this long
# after it was made: a report that read a fill's id (at most FILL_MAX_AGE_S after it was made) starts its
# query within session_reports.REUSE_FILL_S (a Memory table's read takes its blocks at the query's start)
DROP_SUPERSEDED_S = 30
# After a fold round, the sellers with a fill made in the last FILL_MAX_AGE_S get one at the new watermark
# (clickhouse/session_reports.py, refill_after_fold), at most this many
REFILL_SELLERS = 20
DROP_AFTER_S = 180
# A part's newest block number, from its name (<partition>_<min block>_<max block>_<level>[_<mutation>])
PART_BLOCK = "toUInt64(splitByChar('_', substring(_part, length(_partition_id) + 2))[2])"
TABLES = ("session_live_fills", "session_live_states", "session_live_deltas")

# one fill at a time per database and seller in this process: the dashboard asks categories, offers and
# funnel together, and the first fills for the other two
_filling: dict[tuple[str, str, str], threading.Lock] = {}
_filling_lock = threading.Lock()


def lock(settings: Settings, seller_id: str) -> threading.Lock:
    key = (settings.clickhouse_url, settings.clickhouse_database, seller_id)
    with _filling_lock:
        if len(_filling) > 10_000:
            _filling.clear()
        return _filling.setdefault(key, threading.Lock())


def watched(settings: Settings) -> list[str]:
    """The sellers with a fill made in the last FILL_MAX_AGE_S, the most recent first."""
    return [
        str(r[0])
        for r in get_client(settings)
        .query(
            f"SELECT seller_id FROM {settings.clickhouse_database}.session_live_fills "
            f"WHERE made >= now64(3) - {FILL_MAX_AGE_S} GROUP BY seller_id ORDER BY max(made) DESC LIMIT {REFILL_SELLERS}"
        )
        .result_rows
    ]


def fill(settings: Settings, seller_id: str, watermark: int) -> tuple[int, int]:
    """A new fill of the seller's live part as of ``watermark`` over the parts up to the newest block number
    of session_updates now (the caller checks afterwards that the watermark and session_folded_join's
    rebuild did not move, then ``register``s it or ``discard``s it). Returns its id and that block number."""
    drop_old(settings)
    fill_id = secrets.randbits(63) or 1
    c = get_client(settings)
    # read here, not in every report's start (session_live_rows.sql): only a fill needs it. Read before the
    # fill's query, so every part numbered up to it is visible to that query (module docstring)
    blocks = int(
        c.query(
            "SELECT ifNull(max(max_block_number), 0) FROM system.parts "
            "WHERE database = {db:String} AND table = 'session_updates' AND active",
            parameters={"db": settings.clickhouse_database},
        ).result_rows[0][0]
    )
    params = {"fill": fill_id, "seller_id": seller_id, "fold_lo": watermark, "blocks": blocks}
    c.command(query.text(settings, "session_live_fill", {"part_block": PART_BLOCK}), parameters=params)
    c.command(query.text(settings, "session_live_fill_deltas"), parameters={"fill": fill_id})
    return fill_id, blocks


def register(settings: Settings, seller_id: str, watermark: int, join_id: str, blocks: int, fill_id: int) -> None:
    get_client(settings).command(
        f"INSERT INTO {settings.clickhouse_database}.session_live_fills "
        "SELECT {seller_id:String}, {watermark:UInt32}, {join_id:String}, {blocks:UInt64}, {fill:UInt64}, now64(3)",
        parameters={
            "seller_id": seller_id,
            "watermark": watermark,
            "join_id": join_id,
            "blocks": blocks,
            "fill": fill_id,
        },
    )


def discard(settings: Settings, fill_id: int) -> None:
    """A fill never registered (no report reads it)."""
    for table in TABLES[1:]:
        get_client(settings).command(
            f"ALTER TABLE {settings.clickhouse_database}.{table} DELETE WHERE fill = {{fill:UInt64}}",
            parameters={"fill": fill_id},
        )


def drop_old(settings: Settings) -> None:
    """Delete the fills no report can still read (module docstring): the registry row first."""
    c, db = get_client(settings), settings.clickhouse_database
    old = (
        f"SELECT fill FROM (SELECT fill, made, maxIf(made, made <= now64(3) - {DROP_SUPERSEDED_S}) "
        f"OVER (PARTITION BY seller_id) AS settled FROM {db}.session_live_fills) "
        f"WHERE made < settled OR made < now64(3) - {DROP_AFTER_S}"
    )
    fills = [int(r[0]) for r in c.query(old).result_rows]
    for table in TABLES if fills else ():
        c.command(
            f"ALTER TABLE {db}.{table} DELETE WHERE has({{fills:Array(UInt64)}}, fill)", parameters={"fills": fills}
        )
