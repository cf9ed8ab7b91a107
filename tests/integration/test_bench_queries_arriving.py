"""``bench queries``' ``recent_arriving`` state: the seller's events really arrive while the reports are
measured, through the sink's insert path, at the bench's rate, and every one is stored and reaches the
session reports' log (session_updates)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from clickhouse.client import get_client
from clickhouse.migrate import migrate
from livemetrics.settings import Settings
from operations.bench import queries_arriving
from operations.bench.queries import SELLER

pytestmark = pytest.mark.integration


def test_the_arriving_events_are_stored_at_the_rate_while_the_caller_goes_on(clickhouse_dsn, tmp_path: Path):
    s = Settings(data_dir=tmp_path, clickhouse_dsn=clickhouse_dsn, clickhouse_database=f"lm_{uuid.uuid4().hex[:10]}")
    migrate(s)
    db, c = s.clickhouse_database, get_client(s)
    origin = 1_000_000_000_000  # the traffic began long ago: every window holds the full rate
    seen = threading.Event()

    def stored() -> int:
        return c.query(f"SELECT count() FROM {db}.events WHERE seller_id = '{SELLER}'").result_rows[0][0]

    with queries_arriving.Arrivals(s, SELLER, origin, offset=5_000) as arriving:
        # the caller's queries run meanwhile (the measured reports): rows appear while it waits
        for _ in range(200):
            if stored() >= 2 * queries_arriving.RATE:
                seen.set()
                break
            seen.wait(0.05)  # polling the table's count (no signal for an insert's rows becoming visible)
    assert seen.is_set()
    assert stored() == arriving.inserted >= 2 * queries_arriving.RATE
    assert 0.5 * queries_arriving.RATE < arriving.events_per_s < 1.5 * queries_arriving.RATE
    ((offsets, low, high),) = c.query(
        f"SELECT uniqExact(kafka_offset), min(kafka_offset), max(kafka_offset) FROM {db}.events"
    ).result_rows
    assert (offsets, low, high) == (arriving.inserted, 5_000, 5_000 + arriving.inserted - 1)
    ((rows, sessions),) = c.query(
        f"SELECT count(), uniqExact(session) FROM {db}.session_updates WHERE seller_id = '{SELLER}'"
    ).result_rows
    assert rows >= sessions > queries_arriving.RATE // 20
    ((views, offers, categories),) = c.query(
        f"SELECT countIf(type = 'page_view'), uniqExactIf(offer_id, page_type = 'offer'), "
        f"uniqExactIf(category, page_type = 'category') FROM {db}.events"
    ).result_rows
    assert views > 0.7 * arriving.inserted and offers > 100 and categories == 50
