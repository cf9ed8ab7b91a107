"""ClickHouse unreachable (an http:// DSN with nothing behind it), hung (it accepts connections and never
answers) or without the tables (a database never migrated, as after an operator dropped or detached it):
the API keeps serving live numbers from Kafka, and every route that reads history answers 503 with
Retry-After and a sentence saying ClickHouse is the cause, not a 500 (api/clickhouse_errors.py;
docs/operations.md, ClickHouse outages)."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from api.main import create_api
from operations.ports import free_port
from tests.support.servers import ThreadServer, wait_until
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


class SilentServer:
    """Accepts connections and never answers (a hung ClickHouse); ``close()`` resets them all."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # ends the blocked accept(); later connects are refused
        self.sock.close()
        for c in self.conns:
            c.close()


def test_a_hung_clickhouse_holds_up_neither_live_numbers_nor_other_requests(make_settings):
    """/readyz and a report wait for ClickHouse on threads of their own (/readyz at most ~2 s); before,
    /readyz made its client on the event loop, and every request of the API (live numbers, WebSockets)
    waited with it."""
    hung = SilentServer()
    s = make_settings().model_copy(update={"clickhouse_dsn": f"http://127.0.0.1:{hung.port}"})
    _, token = new_seller(s, "s1")
    api = ThreadServer(create_api(s, run_sink=False)).start()
    h = {"Authorization": f"Bearer {token}"}
    answers: dict[str, httpx.Response | Exception] = {}

    def ask(path: str) -> None:
        try:
            answers[path] = httpx.get(f"{api.url}{path}", headers=h, timeout=60)
        except httpx.HTTPError as exc:
            answers[path] = exc

    waiting = [threading.Thread(target=ask, args=(p,), daemon=True) for p in ("/readyz", HISTORY[0])]
    try:
        waiting[0].start()
        wait_until(lambda: hung.conns, 30, interval=0.05, what="/readyz waiting on ClickHouse")
        waiting[1].start()  # a report too (its thread waits for the same client lock or for ClickHouse)
        for _ in range(3):
            r = httpx.get(f"{api.url}/v1/sellers/s1/live", headers=h, timeout=5)
            assert r.status_code == 200 and r.json()["seller_id"] == "s1"
        # The report still waits for ClickHouse; /readyz gives up on it after ~2 s (clickhouse/probe.py), so on
        # a loaded machine it may have answered already: then not ready, naming ClickHouse.
        assert waiting[1].is_alive()
        if not waiting[0].is_alive():
            ready = answers["/readyz"]
            assert isinstance(ready, httpx.Response) and ready.status_code == 503, ready
            assert ready.json()["checks"]["clickhouse"] is False
    finally:
        hung.close()  # ClickHouse "comes back" refusing: the waiting requests end
        for t in waiting:
            if t.ident is not None:  # started
                t.join(30)
        api.stop()
    assert all(isinstance(a, httpx.Response) for a in answers.values()), answers
    assert answers["/readyz"].status_code == 503 and answers["/readyz"].json()["checks"]["clickhouse"] is False
    assert answers[HISTORY[0]].status_code == 503 and answers[HISTORY[0]].headers["Retry-After"] == "5"
