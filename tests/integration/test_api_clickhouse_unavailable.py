"""ClickHouse unreachable (an http:// DSN with nothing behind it) or without the tables (a database never
migrated, as after an operator dropped or detached it): the API keeps serving live numbers from Kafka, and
every route that reads history answers 503 with Retry-After and a sentence saying ClickHouse is the cause,
not a 500 (api/clickhouse_errors.py; docs/operations.md, ClickHouse outages)."""

from __future__ import annotations

import httpx
import pytest

from api.main import create_api
from operations.ports import free_port
from tests.support.servers import ThreadServer
from tests.support.stack import new_seller

pytestmark = pytest.mark.integration

HISTORY = ("/v1/sellers/s1/reports/categories", "/v1/sellers/s1/payment-errors")


def _check(s) -> None:
    _, token = new_seller(s, "s1")
    api = ThreadServer(create_api(s, run_sink=False)).start()
    try:
        h = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{api.url}/v1/sellers/s1/live", headers=h, timeout=30).status_code == 200
        for path in HISTORY:
            r = httpx.get(f"{api.url}{path}", headers=h, timeout=30)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers["Retry-After"] == "5"
            detail = r.json()["detail"]
            assert (
                detail.startswith("history is unavailable: ClickHouse is ")
                and "live numbers are not affected" in detail
            )
            assert "127.0.0.1" not in detail  # ClickHouse's address stays in the log
    finally:
        api.stop()


def test_clickhouse_unreachable_means_503_for_history_and_live_still_served(make_settings):
    s = make_settings().model_copy(update={"clickhouse_dsn": f"http://127.0.0.1:{free_port()}"})
    _check(s)


def test_a_missing_database_means_503_for_history(make_settings):
    _check(make_settings())  # its own database, never migrated: UNKNOWN_DATABASE from the real engine
