"""One clickhouse-connect client per process and DSN (chdb allows one process per data directory)."""

from __future__ import annotations

import threading
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from livemetrics.settings import Settings

# ClickHouse 26.x defaults async_insert to 1; we want inserts that are durable when acknowledged
# and de-duplicated by token, so every insert states its settings.
INSERT_SETTINGS = {"async_insert": 0, "wait_for_async_insert": 1, "insert_deduplicate": 1,
                   "deduplicate_blocks_in_dependent_materialized_views": 1}
# Inserts into `events` (the sink and the benchmark's raw ceiling). optimize_on_insert would pre-merge
# rows of equal key inside each view's block: every view already groups by its target's sorting key,
# and the reports aggregate across parts anyway, so it only costs. The views run concurrently.
EVENTS_INSERT_SETTINGS = {**INSERT_SETTINGS, "optimize_on_insert": 0, "parallel_view_processing": 1}

_clients: dict[str, Client] = {}
_lock = threading.Lock()


def get_client(settings: Settings) -> Client:
    url = settings.clickhouse_url
    with _lock:
        client = _clients.get(url)
        if client is None:
            if url.startswith("chdb:"):
                Path(url.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
            client = clickhouse_connect.get_client(dsn=url)
            _clients[url] = client
        return client


def close_all() -> None:
    with _lock:
        for c in _clients.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        _clients.clear()
