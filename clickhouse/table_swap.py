"""Bringing a table over to a new layout (partition key, TTL, column types) without losing a row.

A migration that changes a table's layout creates ``<table>__next`` with the new one and a comment that
numbers it (``COMMENT 'layout NNN'``, NNN the migration's); ``swap_in_next_tables`` (run by ``migrate`` after every migration)
then, for each such table:
1. stops merges on both tables, so that their row counts only move if something writes;
2. empties ``__next`` (a run interrupted before the swap left a partial copy) and copies every row,
   converting a float that becomes a Decimal by its shortest decimal text rounded to the new scale
   (a plain CAST would truncate 0.7999999999999999 to 0.7999);
3. checks that the old table did not change during the copy and that the copy has all of its rows,
   else stops with an error that says what to do (stop the sinks, run ``migrate`` again);
4. EXCHANGE TABLES (atomic): materialized views name their source and target tables, so from now on
   they read and write the new one;
5. drops ``__next``, which holds the old table now.
Re-runnable at every step: a table whose layout number is at least its ``__next``'s was swapped, and its
``__next`` (the old rows, or an empty table a re-run of the migration's statements created) goes.
Writers must be stopped while it runs (``livemetrics up``, ``api`` and ``sink`` migrate before their
sink starts); step 3 refuses to swap a table that a running sink changed.
"""

from __future__ import annotations

import logging
import re

from clickhouse_connect.driver.client import Client

log = logging.getLogger("livemetrics.migrate")
SUFFIX = "__next"
# Copy settings: the rows are already stored (no limit on the partitions one block of them spans) and
# must all be written as they are (two equal blocks of old rows are not retries; rows of one key that a
# merge has not combined yet stay apart, so that the copy has as many rows as the table).
COPY_SETTINGS = {
    "max_partitions_per_insert_block": 0,
    "insert_deduplicate": 0,
    "async_insert": 0,
    "optimize_on_insert": 0,
}
_FLOAT = re.compile(r"\bFloat(32|64)\b")
_DECIMAL = re.compile(r"\bDecimal\((\d+), (\d+)\)")
_LAYOUT = re.compile(r"^layout (\d+)")


class SwapError(RuntimeError):
    """A table could not be brought over safely; nothing was swapped, ``migrate`` can be run again."""


def copy_expression(name: str, old_type: str, new_type: str) -> str:
    """What the copy selects for a column of the old table, to be stored as ``new_type``."""
    dec = _DECIMAL.search(new_type)
    if old_type != new_type and dec and _FLOAT.search(old_type):
        precision, scale = dec.groups()
        return f"CAST(toString(round({name}, {scale})) AS Decimal({precision}, {scale}))"
    return name


def _comment(c: Client, db: str, table: str) -> str | None:
    rows = c.query(
        "SELECT comment FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": db, "t": table},
    ).result_rows
    return rows[0][0] if rows else None


def _layout(comment: str | None) -> int:
    m = _LAYOUT.match(comment or "")
    return int(m.group(1)) if m else 0


def _columns(c: Client, db: str, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in c.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
            parameters={"db": db, "t": table},
        ).result_rows
    ]


def _count(c: Client, db: str, table: str) -> int:
    return int(c.query(f"SELECT count() FROM {db}.`{table}`").result_rows[0][0])


def swap_in(c: Client, db: str, table: str) -> bool:
    """Bring ``table`` over to the layout of ``table__next``; True if it was swapped now."""
    nxt = table + SUFFIX
    marker = _comment(c, db, nxt)
    if marker is None:
        return False
    if _layout(_comment(c, db, table)) >= _layout(marker):  # swapped: __next is the old table, or an empty re-creation
        c.command(f"DROP TABLE IF EXISTS {db}.`{nxt}`")
        return False
    old = _columns(c, db, table)
    new = dict(_columns(c, db, nxt))
    kept = [(name, typ) for name, typ in old if name in new]
    cols = ", ".join(f"`{name}`" for name, _ in kept)
    exprs = ", ".join(copy_expression(f"`{name}`", typ, new[name]) for name, typ in kept)
    for t in (table, nxt):
        c.command(f"SYSTEM STOP MERGES {db}.`{t}`")
    try:
        before = _count(c, db, table)
        c.command(f"TRUNCATE TABLE {db}.`{nxt}`")
        c.command(f"INSERT INTO {db}.`{nxt}` ({cols}) SELECT {exprs} FROM {db}.`{table}`", settings=COPY_SETTINGS)
        after, copied = _count(c, db, table), _count(c, db, nxt)
        if after != before:
            raise SwapError(
                f"{db}.{table} changed while it was copied to its new layout ({before} rows, then {after}): "
                "stop every sink and run `livemetrics migrate` again"
            )
        if copied != after:
            raise SwapError(
                f"{db}.{table}: the copy to its new layout has {copied} of its {after} rows; nothing was "
                "swapped, run `livemetrics migrate` again"
            )
        c.command(f"EXCHANGE TABLES {db}.`{table}` AND {db}.`{nxt}`")
    finally:
        for t in (table, nxt):
            c.command(f"SYSTEM START MERGES {db}.`{t}`")
    c.command(f"DROP TABLE IF EXISTS {db}.`{nxt}`")
    log.info("%s.%s: %d rows brought over to %s", db, table, before, marker)
    return True


def swap_in_next_tables(c: Client, db: str) -> list[str]:
    """``swap_in`` for every ``<table>__next`` of ``db``; returns the tables swapped now."""
    rows = c.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND endsWith(name, {s:String}) ORDER BY name",
        parameters={"db": db, "s": SUFFIX},
    ).result_rows
    return [r[0][: -len(SUFFIX)] for r in rows if swap_in(c, db, r[0][: -len(SUFFIX)])]
