"""`livemetrics simulate --backfill-days`: history goes through the real gateway with signed server
keys, lands in ClickHouse with past timestamps for the reports, and is never counted live."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from clickhouse.client import get_client
from producers.simulate.runner import run_backfill
from producers.simulate.sellers import demo_origins, ensure_demo_sellers
from tests.support import factories as f
from tests.support.servers import get_json, wait_until
from tests.support.stack import Stack, new_seller

pytestmark = pytest.mark.integration


def one_session_per_partition(partitions: int) -> list[str]:
    """Session ids that the producer's default partitioner (CRC32 of the key) spreads over every partition."""
    chosen: dict[int, str] = {}
    for i in range(10_000):
        sid = f"live-shopper-{i:04d}"
        chosen.setdefault(zlib.crc32(sid.encode()) % partitions, sid)
        if len(chosen) == partitions:
            return list(chosen.values())
    raise AssertionError("no session ids for every partition")


def test_backfill_is_stored_for_reports_and_never_counted_live(settings, tmp_path):
    sellers = ensure_demo_sellers(settings, ("acme-home",))
    stack = Stack(settings, tmp_path, {"warmup": new_seller(settings, "warmup")})
    try:
        stack.warm_up()
        stats = asyncio.run(
            run_backfill(stack.gateway.url, sellers, days=0.5, sessions_per_day=240, seed=7, log=lambda s: None)
        )
        assert stats.sent > 100 and stats.rejected == 0
        db = settings.clickhouse_database
        ch = get_client(settings)

        def stored():
            return ch.query(
                f"SELECT count(), countIf(backfill), min(ts), max(ts) FROM {db}.events WHERE seller_id = 'acme-home'"
            ).result_rows[0]

        n, n_backfill, oldest, newest = wait_until(
            lambda: (r := stored())[0] >= stats.sent and r, 20, interval=0.3, what="backfilled rows in ClickHouse"
        )
        assert n == n_backfill == stats.sent
        assert (newest - oldest).total_seconds() > 6 * 3600  # spread over the past half day

        token = sellers["acme-home"]["token"]
        rows = get_json(f"{stack.api.url}/v1/sellers/acme-home/reports/hourly?tz=Europe/Berlin", token)["rows"]
        assert sum(r.get("page_views", 0) for r in rows) > 0
        # One live shopper per partition, sent after the history: once the worker has counted them it has
        # read every partition past the backfilled events, so the counts show live sessions only.
        live_sessions = one_session_per_partition(settings.partitions)
        browser_key = sellers["acme-home"]["browser_key"]
        for sid in live_sessions:
            assert (
                stack.post(browser_key, f.page_view(session_id=sid), origin=demo_origins(settings)[0]).status_code
                == 202
            )
        snap = wait_until(
            lambda: (s := stack.live("acme-home", token))["live"]["home"] == len(live_sessions) and s,
            10,
            interval=0.2,
            what="the live shoppers",
        )
        assert snap["active_sessions"] == len(live_sessions) and snap["purchased_30m"] == 0
        assert snap["payment_failures_30m"] == 0 and sum(snap["abandoned_30m"].values()) == 0
        assert sum(sum(v) for v in snap["rates_per_minute"]["series"].values()) == len(live_sessions)
    finally:
        stack.close()
