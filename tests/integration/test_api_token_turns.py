"""One token's many requests at once wait their turn in the API and take no other seller's threads
(docs/security.md, Smaller guards: "Seller token: API load"). Real Kafka key registry and chdb; seller A's
report queries are held in their threads (a slow ClickHouse query, for as long as the test says) around the
real query."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.main import create_api
from clickhouse import query as queries
from clickhouse.migrate import migrate
from livemetrics.keys import KeyRegistry
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration
RANGE = {"from": "2026-01-01", "to": "2026-01-08"}


def test_one_tokens_burst_of_reports_runs_a_few_at_a_time_and_another_seller_is_answered_meanwhile(
    make_settings, add_seller, monkeypatch
):
    """Seller A sends 30 reports at once (within its burst of 60): each took a thread of the API's default
    executor (6 here, shared by every seller's ClickHouse reads) and held it as long as its query ran, so
    seller B's report waited behind them (measured: 2.4 s for B's report, 1.3 s for its payment errors,
    during a 60-report burst at load ~13). Now at most LIVEMETRICS_API_TOKEN_CONCURRENCY (3) of one
    token's requests are under way, the rest wait without a thread, and B's report is answered while A's
    queries still run."""
    s = make_settings(api_rate_per_s=20, api_rate_burst=60)
    tokens = {n: add_seller(s, n)[1] for n in ("shop-a", "shop-b")}
    migrate(s)
    real, held = queries.report, threading.Event()
    running, most = [0], [0]
    lock = threading.Lock()

    def report(settings, name, seller_id, *args):
        if seller_id == "shop-a":
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            try:
                held.wait(30)  # a slow query: the thread is busy until the test lets it go
            finally:
                with lock:
                    running[0] -= 1
        return real(settings, name, seller_id, *args)

    monkeypatch.setattr(queries, "report", report)
    registry = KeyRegistry(s).start()
    server = ThreadServer(create_api(s, registry, run_sink=False)).start()
    wait_until(lambda: all(registry.authenticate(t, ("token",)) for t in tokens.values()), 15, what="tokens")

    def get(seller: str, path: str, params=None) -> tuple[int, float]:
        t0 = time.monotonic()
        r = httpx.get(
            f"{server.url}/v1/sellers/{seller}/{path}",
            params=params,
            headers={"Authorization": f"Bearer {tokens[seller]}"},
            timeout=60,
        )
        return r.status_code, time.monotonic() - t0

    pool = ThreadPoolExecutor(40)
    try:
        burst = [pool.submit(get, "shop-a", "reports/hourly", RANGE) for _ in range(30)]
        wait_until(lambda: running[0] >= s.api_token_concurrency, 15, what="A's first queries running")
        time.sleep(0.5)  # no signal says that no more of A's queries will start: this is that check's time
        b = pool.submit(get, "shop-b", "reports/hourly", RANGE)
        b_code, b_took = b.result(timeout=10)
        a_running_when_b_answered = running[0]
        held.set()
        a_codes = [f.result(timeout=60)[0] for f in burst]
    finally:
        held.set()
        pool.shutdown()
        server.stop()
        registry.stop()
    assert most[0] == s.api_token_concurrency, most[0]  # old code: 6, every thread of the default executor
    assert b_code == 200 and a_running_when_b_answered == s.api_token_concurrency, (b_took, running)
    assert a_codes == [200] * 30  # A's requests waited their turn, none refused
