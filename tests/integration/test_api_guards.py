"""The API's smaller guards against a running API (real Kafka key registry, chdb): per-token rate
limits (429 + Retry-After), bounded report ranges (422 naming the limit), WebSocket caps in all and per
client IP, and the largest message a dashboard may send (docs/security.md)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from api import ws_limits
from api.main import create_api
from clickhouse.migrate import migrate
from livemetrics.keys import KeyRegistry
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def api(make_settings, add_seller):
    s = make_settings(
        api_rate_per_s=0.2,
        api_rate_burst=5,
        ws_max_total=3,
        ws_max_per_ip=2,
        ws_max_per_seller=10,
        ws_max_message_bytes=256,
    )
    tokens = {name: add_seller(s, name)[1] for name in ("shop-a", "shop-b")}
    migrate(s)
    registry = KeyRegistry(s).start()
    server = ThreadServer(create_api(s, registry, run_sink=False)).start()
    wait_until(lambda: all(registry.authenticate(t, ("token",)) for t in tokens.values()), 15, what="tokens loaded")
    yield {"url": server.url, "tokens": tokens, "settings": s}
    server.stop()
    registry.stop()


def get(api, path: str, token: str, **params) -> httpx.Response:
    return httpx.get(api["url"] + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def test_a_token_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected(api):
    a, b = api["tokens"]["shop-a"], api["tokens"]["shop-b"]
    codes = [get(api, "/v1/sellers/shop-a/live", a).status_code for _ in range(5)]  # the burst
    assert codes == [200] * 5
    r = get(api, "/v1/sellers/shop-a/live", a)
    assert r.status_code == 429 and "LIVEMETRICS_API_RATE_PER_S" in r.json()["detail"]
    assert 1 <= int(r.headers["Retry-After"]) <= 5  # one request's worth at 0.2/s
    assert get(api, "/v1/sellers/shop-a/alerts", a).status_code == 429  # every route counts for the token
    assert get(api, "/v1/sellers/shop-b/live", b).status_code == 200  # per token
    assert httpx.get(api["url"] + "/healthz", timeout=10).status_code == 200  # health is not a token's


def test_report_ranges_are_bounded(api):
    token = api["tokens"]["shop-a"]
    r = get(api, "/v1/sellers/shop-a/reports/hourly", token, **{"from": "2025-01-01", "to": "2026-02-06"})
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "the range from `from` to `to` is 401.0 days; at most 400 days (LIVEMETRICS_REPORT_MAX_DAYS) per report"
    )
    r = get(api, "/v1/sellers/shop-a/reports/hourly", token, **{"from": "2025-01-01", "to": "2026-02-05"})
    assert r.status_code == 200 and r.json()["from"] == "2025-01-01T00:00:00Z"


def ws_url(api, seller: str) -> str:
    return api["url"].replace("http", "ws") + f"/v1/sellers/{seller}/live/ws"


async def connect(api, seller: str, forwarded_for: str | None = None):
    """(socket, its first message), or (None, (close code, reason)) when the server closed it at once."""
    headers = {"Authorization": f"Bearer {api['tokens'][seller]}"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    ws = await websockets.connect(ws_url(api, seller), additional_headers=headers)
    try:
        return ws, json.loads(await asyncio.wait_for(ws.recv(), 10))
    except websockets.ConnectionClosed as exc:
        return None, (exc.rcvd.code, exc.rcvd.reason)


async def closed_with(ws) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as exc:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return exc.value.rcvd.code, exc.value.rcvd.reason


def test_websocket_caps_per_client_ip_and_in_all(make_settings, api):
    async def scenario():
        first = [await connect(api, "shop-a"), await connect(api, "shop-b")]
        assert [m["type"] for _, m in first] == ["snapshot", "snapshot"]
        refused, per_ip = await connect(api, "shop-a")  # a third from 127.0.0.1, whatever the seller
        assert refused is None
        await first[0][0].close()
        again = None
        for _ in range(50):  # the server frees the slot once it has read the close
            again, m = await connect(api, "shop-a")
            if again is not None:
                break
            await asyncio.sleep(0.05)
        assert again is not None and m["type"] == "snapshot"
        await again.close()
        await first[1][0].close()
        return per_ip

    code, reason = asyncio.run(scenario())
    assert code == 1008 and "LIVEMETRICS_WS_MAX_PER_IP" in reason


def test_websocket_total_cap_counts_clients_behind_a_trusted_proxy(make_settings, add_seller):
    s = make_settings(ws_max_total=4, ws_max_per_ip=1, trusted_proxies=["127.0.0.0/8"])
    token = add_seller(s, "shop-a")[1]
    registry = KeyRegistry(s).start()
    server = ThreadServer(create_api(s, registry, run_sink=False)).start()
    wait_until(lambda: registry.authenticate(token, ("token",)), 15, what="token loaded")
    api = {"url": server.url, "tokens": {"shop-a": token}}

    async def scenario():
        one, m1 = await connect(api, "shop-a", "198.51.100.1")
        two, m2 = await connect(api, "shop-a", "198.51.100.2")  # another client behind the same proxy
        assert m1["type"] == m2["type"] == "snapshot"
        _, per_ip = await connect(api, "shop-a", "198.51.100.1")
        three, m3 = await connect(api, "shop-a", "2001:db8::3")
        assert m3["type"] == "snapshot"
        _, same_64 = await connect(api, "shop-a", "2001:db8::4")  # an IPv6 client counts per /64
        four, m4 = await connect(api, "shop-a", "198.51.100.4")
        assert m4["type"] == "snapshot"
        _, full = await connect(api, "shop-a", "198.51.100.5")
        for ws in (one, two, three, four):
            await ws.close()
        return per_ip, same_64, full

    try:
        per_ip, same_64, full = asyncio.run(scenario())
    finally:
        server.stop()
        registry.stop()
    assert per_ip[0] == same_64[0] == 1008 and full[0] == 1013 and "LIVEMETRICS_WS_MAX_TOTAL" in full[1]


def test_an_oversized_client_message_closes_the_socket(api):
    async def scenario():
        ws, first = await connect(api, "shop-a")
        assert first["type"] == "snapshot"
        await ws.send("x" * 256)  # at the limit: ignored, the socket stays
        await ws.send("y" * 257)
        return await closed_with(ws)

    code, reason = asyncio.run(scenario())
    assert code == 1009 and "at most 256 bytes" in reason


def test_a_socket_flooding_messages_is_closed_and_another_sellers_dashboard_is_served(api):
    async def scenario():
        ws, first = await connect(api, "shop-a")
        other, other_first = await connect(api, "shop-b")
        assert first["type"] == other_first["type"] == "snapshot"
        for _ in range(5000):  # as fast as it can: one socket took ~0.3 core and delayed others by ~2 s
            try:
                await ws.send("x")
            except websockets.ConnectionClosed:
                break
        code, reason = await closed_with(ws)
        await asyncio.wait_for(await other.ping(), 10)  # the other seller's socket is still open
        await other.close()
        return code, reason

    code, reason = asyncio.run(scenario())
    assert code == 1008 and reason == (
        f"too many client messages: at most {ws_limits.MESSAGES_BURST}, then {ws_limits.MESSAGES_PER_S:g} a second "
        "(this socket only pushes)"
    )


def test_websocket_handshakes_count_against_the_tokens_rate(api):
    async def scenario():
        for _ in range(5):  # the burst: each handshake a snapshot
            ws, first = await connect(api, "shop-a")
            assert first["type"] == "snapshot"
            await ws.close()
        with pytest.raises(websockets.InvalidStatus) as refused:  # refused before the handshake completes
            await connect(api, "shop-a")
        other, first = await connect(api, "shop-b")  # another token is not held back
        assert first["type"] == "snapshot"
        await other.close()
        return refused.value.response.status_code

    # before, handshakes were counted nowhere: one token opening and closing sockets as fast as a client
    # could (~225/s) took ~0.3 of a core and slowed other sellers' snapshots (p50 5 -> 20 ms)
    assert asyncio.run(scenario()) == 403
    assert get(api, "/v1/sellers/shop-a/live", api["tokens"]["shop-a"]).status_code == 429  # the same budget
