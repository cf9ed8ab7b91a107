"""Migration 008 on the real engine: the keys of a database at 007 move to event_key_batches (marked as
stored by another batch), the old table and view go, a copy of an event stored before the upgrade is still
dropped, and the migration's statements run again change nothing."""

from __future__ import annotations

import pytest

from clickhouse.client import get_client
from clickhouse.migrate import migrate, migration_files, statements
from livemetrics.contract import encode
from tests.integration.test_clickhouse_events_json import insert
from tests.integration.test_clickhouse_sink import scalar, some_events
from tests.support.old_schema import schema_before

pytestmark = pytest.mark.integration


def tables(settings) -> set[str]:
    return {
        r[0]
        for r in get_client(settings)
        .query(
            "SELECT name FROM system.tables WHERE database = {d:String}", parameters={"d": settings.clickhouse_database}
        )
        .result_rows
    }


def keys(settings) -> list[tuple]:
    return (
        get_client(settings)
        .query(f"SELECT key, stored_at, batch FROM {settings.clickhouse_database}.event_key_batches ORDER BY key")
        .result_rows
    )


def test_keys_stored_before_008_still_drop_copies_and_a_re_run_keeps_them(settings):
    schema_before(settings, 8)
    events = some_events(n_sessions=3, seed=31)
    old, new = events[:10], events[10:15]
    # stored under 007: event_keys_mv writes their keys into event_keys
    get_client(settings).insert(
        f"{settings.clickhouse_database}.events",
        [[e.event_id, e.type, e.seller_id, e.session_id, e.ts, e.received_at] for e in old],
        column_names=["event_id", "type", "seller_id", "session_id", "ts", "received_at"],
        settings={"async_insert": 0},
    )
    assert scalar(settings, "SELECT count() FROM {db}.event_keys") == len(old)
    assert migrate(settings)[0] == "008_event_key_batches"  # and any later ones
    assert {"event_keys", "event_keys_mv"} & tables(settings) == set()
    moved = keys(settings)
    assert len(moved) == len(old) and {k[2] for k in moved} == {0}
    insert(settings, [encode(e) for e in old[:4] + new])  # copies of stored events and new ones
    assert scalar(settings, "SELECT count() FROM {db}.events") == len(old) + len(new)
    assert scalar(settings, "SELECT uniqExact(seller_id, event_id) FROM {db}.events") == len(old) + len(new)
    after = keys(settings)
    assert len(after) == len(old) + len(new) and sum(1 for k in after if k[2] != 0) == len(new)
    ((_, _, sql),) = [m for m in migration_files() if m[0] == 8]
    for stmt in statements(sql, settings):
        get_client(settings).command(stmt)
    assert keys(settings) == after and {"event_keys", "event_keys_mv"} & tables(settings) == set()
