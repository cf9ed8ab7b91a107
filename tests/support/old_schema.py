"""A database as deployed before a given migration, for the upgrade tests."""

from __future__ import annotations

from clickhouse.client import get_client
from clickhouse.migrate import migration_files, statements


def schema_before(settings, version: int) -> None:
    """Apply the migrations numbered below ``version``, recorded as applied, as an older release left them.
    Before 007, 007 (event_dedup) and 008 (event_key_batches) are applied too: the current sink, which the
    tests use to fill the old database, writes through the event_key_batches table; and 015 (sink_logs) always:
    it reads and writes the topic ids there at every assignment."""
    c, db = get_client(settings), settings.clickhouse_database
    c.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    c.command(
        f"CREATE TABLE {db}.schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    for v, name, sql in migration_files():
        if v < version or (version < 7 and name in ("event_dedup", "event_key_batches")) or name == "sink_logs":
            for stmt in statements(sql, settings):
                c.command(stmt)
            c.insert(f"{db}.schema_migrations", [[v, name]], column_names=["version", "name"])
