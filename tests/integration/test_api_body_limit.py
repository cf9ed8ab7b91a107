"""The API reads at most API_MAX_BODY_BYTES of a request body (docs/security.md, Smaller guards): its
largest real body is a status note (2,000 characters) or a webhook URL (2,048), yet FastAPI read any
body whole before the token was even checked, so one anonymous client could make the process hold
gigabytes (a 300 MB body grew it by ~1 GB). Now 413 naming the limit, declared (Content-Length) or
streamed (chunked), before the body is kept. A running API (real Kafka key registry), with a shim
outside it counting the body bytes it takes from the server."""

from __future__ import annotations

import httpx
import pytest

from api.body_limit import API_MAX_BODY_BYTES
from api.main import create_api
from livemetrics.keys import KeyRegistry
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration
BODY_BYTES = 300_000_000


class PulledBytes:
    """An ASGI shim: how many request-body bytes the app it wraps has taken from the server."""

    def __init__(self, app):
        self.app, self.bytes = app, 0

    async def __call__(self, scope, receive, send):
        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                self.bytes += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


def chunks(total: int):
    """A JSON object with one huge string, sent chunked (no Content-Length), 1 MB at a time."""
    yield b'{"seller_id": "'
    for _ in range(total // 1_000_000):
        yield b"a" * 1_000_000
    yield b'"}'


def test_bodies_over_the_limit_are_refused_before_they_are_kept(make_settings, add_seller):
    s = make_settings()
    token = add_seller(s, "shop-a")[1]
    registry = KeyRegistry(s).start()
    api = PulledBytes(create_api(s, registry, run_sink=False))
    server = ThreadServer(api).start()
    wait_until(lambda: registry.authenticate(token, ("token",)), 15, what="token loaded")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            # Anonymous and streamed: before the limit, FastAPI took all 300 MB, then answered 401.
            r = c.post("/v1/ws-tickets", content=chunks(BODY_BYTES), headers={"Content-Type": "application/json"})
            assert r.status_code == 413, r.text[:200]
            assert str(API_MAX_BODY_BYTES) in r.json()["detail"], r.text
            assert api.bytes < API_MAX_BODY_BYTES + 1_100_000, api.bytes  # the limit and one chunk at most
            api.bytes = 0
            big = {"seller_id": "shop-a", "pad": "x" * API_MAX_BODY_BYTES}
            r = c.post("/v1/ws-tickets", json=big, headers=auth)  # declared: refused before reading any
            assert r.status_code == 413 and api.bytes == 0, (r.text[:200], api.bytes)
            note = {"status": "resolved", "note": "n" * 2000}  # the largest real body passes
            r = c.post("/v1/sellers/shop-a/payment-errors/x/status", json=note, headers=auth)
            assert r.status_code in (404, 503), r.text[:200]  # no such alert (or no ClickHouse): not 413
            assert c.post("/v1/ws-tickets", json={"seller_id": "shop-a"}, headers=auth).status_code == 201
    finally:
        server.stop()
        registry.stop()
