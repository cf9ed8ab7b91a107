"""Numbered SQL migrations (``clickhouse/migrations/NNN_name.sql``), applied once each, in order.

A migration that changes a table's layout creates ``<table>__next``; the rows are brought over and the
tables swapped before the migration is recorded (``clickhouse/table_swap.py``)."""

from __future__ import annotations

import re
from importlib import resources

from clickhouse.client import get_client
from clickhouse.session_cap import SESSION_MAX_ITEMS
from clickhouse.table_swap import swap_in_next_tables
from livemetrics.contract import PII_COLUMNS
from livemetrics.settings import Settings

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def migration_files() -> list[tuple[int, str, str]]:
    out = []
    for f in resources.files("clickhouse.migrations").iterdir():
        m = _NAME.match(f.name)
        if m:
            out.append((int(m.group(1)), m.group(2), f.read_text()))
    return sorted(out)


def template_vars(settings: Settings) -> dict[str, str]:
    return {
        "db": settings.clickhouse_database,
        "event_ttl_days": str(settings.event_ttl_days),
        "pii_ttl_days": str(settings.pii_ttl_days),
        "session_max_items": str(SESSION_MAX_ITEMS),
    }


def statements(sql: str, settings: Settings) -> list[str]:
    rendered = sql
    for k, v in template_vars(settings).items():
        rendered = rendered.replace("{" + k + "}", v)
    body = "\n".join(line for line in rendered.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    c = get_client(settings)
    db = settings.clickhouse_database
    c.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    c.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, "
        "applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"
    )
    done = {r[0] for r in c.query(f"SELECT version FROM {db}.schema_migrations").result_rows}
    applied = []
    for version, name, sql in migration_files():
        if version in done:
            continue
        for stmt in statements(sql, settings):
            c.command(stmt)
        swap_in_next_tables(c, db)
        c.insert(
            f"{db}.schema_migrations", [[version, name]], column_names=["version", "name"], settings={"async_insert": 0}
        )
        applied.append(f"{version:03d}_{name}")
    swap_in_next_tables(c, db)  # an empty `__next` that a re-run of a migration's statements made goes
    apply_pii_ttl(settings)
    return applied


# Personal-data columns and the server-side time column their TTL counts from, per table (never the
# sender's `ts`: a sender could keep its data longer by sending a future one).
PII_TTL_TABLES = {"events": "received_at", "payment_errors": "at"}


def apply_pii_ttl(settings: Settings) -> list[str]:
    """Make the personal-data TTL follow ``pii_ttl_days`` when it changed after the tables were created."""
    c, db, days = get_client(settings), settings.clickhouse_database, settings.pii_ttl_days
    changed = []
    for table, time_col in PII_TTL_TABLES.items():
        for row in c.query(f"DESCRIBE TABLE {db}.{table}").result_rows:
            name, type_, ttl = row[0], row[1], row[6]
            if name in PII_COLUMNS and ttl and (f"toIntervalDay({days})" not in ttl or f"({time_col})" not in ttl):
                c.command(
                    f"ALTER TABLE {db}.{table} MODIFY COLUMN {name} {type_} "
                    f"TTL toDateTime({time_col}) + INTERVAL {days} DAY"
                )
                changed.append(f"{table}.{name}")
    return changed
