"""The dashboard WebSocket against a real stack: push of snapshots and alerts, personal data only for
tokens allowed to see it, Origin allowlist, expired and revoked tokens, per-seller connection cap."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import msgspec
import pytest
import websockets

from livemetrics import keys
from tests.support import factories as f
from tests.support.stack import Stack, module_settings, new_seller

pytestmark = pytest.mark.integration
GOOD_ORIGIN = "http://dash.example"


@pytest.fixture(scope="module")
def stack(kafka, clickhouse_dsn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws")
    s = module_settings(kafka, clickhouse_dsn, tmp, allowed_origins=[GOOD_ORIGIN], ws_max_per_seller=3)
    sellers = {name: new_seller(s, name) for name in ("seller-a", "warmup", "capped")}
    sellers["seller-a-nopii"] = (sellers["seller-a"][0], new_seller(s, "seller-a", can_read_pii=False)[1])
    sellers["expired"] = (None, new_seller(s, "seller-a", expires_at=int(time.time()) - 5)[1])
    st = Stack(s, tmp, sellers)
    try:
        st.warm_up()
        for _, token in sellers.values():
            st.wait_keys(token)
        yield st
    finally:
        st.close()


def ws_url(st: Stack, seller: str, token: str, api: str | None = None) -> str:
    """The dashboard's way in: the token (in a header) buys a single-use ticket; only that goes in the URL."""
    r = httpx.post(
        f"{st.api.url}/v1/ws-tickets",
        json={"seller_id": seller},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return (api or st.api.url).replace("http", "ws") + r.json()["ws_path"]


def bare_url(st: Stack, seller: str) -> str:
    return st.api.url.replace("http", "ws") + f"/v1/sellers/{seller}/live/ws"


async def next_of(ws, kind: str, pred=lambda d: True, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if msg["type"] == kind and pred(msg.get("data", {})):
            return msg


def test_snapshots_and_alerts_are_pushed_with_pii_only_for_allowed_tokens(stack):
    browser, token = stack.sellers["seller-a"]
    nopii = stack.sellers["seller-a-nopii"][1]

    async def scenario():
        async with (
            websockets.connect(ws_url(stack, "seller-a", token), origin=GOOD_ORIGIN) as full,
            websockets.connect(ws_url(stack, "seller-a", nopii), origin=GOOD_ORIGIN) as masked,
        ):
            assert (await next_of(full, "snapshot"))["data"]["seller_id"] == "seller-a"
            await next_of(masked, "snapshot")
            sess = "sess-ws-0000001"
            checkout = f.page_view("checkout", session_id=sess)
            failed = f.payment_failed(session_id=sess, ts=checkout["ts"] + 1)
            r = stack.post(browser, {"events": [checkout, failed]})
            assert r.json()["accepted"] == 2
            a_full = (await next_of(full, "alert"))["data"]
            a_masked = (await next_of(masked, "alert"))["data"]
            snap = (await next_of(full, "snapshot", lambda d: d["payment_failures_30m"] >= 1))["data"]
            return a_full, a_masked, snap

    a_full, a_masked, snap = asyncio.run(scenario())
    assert a_full["customer"]["email"] == "ada@example.com" and a_full["kind"] == "payment_failed"
    assert a_full["payment"]["error_code"] == "card_declined"
    text = json.dumps(a_masked)
    assert "ada@example.com" not in text and "7946 0958" not in text and "Ada Lovelace" not in text
    assert a_masked["customer"]["email"] == "a***@example.com" and a_masked["pii_masked"] is True
    assert a_masked["client"]["ip"] is None and a_masked["order"] == a_full["order"]
    assert snap["payment_failures_30m"] == 1
    assert snap["live"]["payment"] == 1 and snap["live"]["checkout"] == 0  # the batch's later event decides


def test_handshake_checks_origin_token_expiry_and_cap(stack):
    token = stack.sellers["capped"][1]

    async def refused(url, origin=GOOD_ORIGIN, token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            async with websockets.connect(url, origin=origin, additional_headers=headers) as ws:
                await ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code
        except websockets.InvalidStatus as exc:
            return exc.response.status_code
        return 0

    async def scenario():
        out = {
            "bad_origin": await refused(ws_url(stack, "capped", token), origin="http://evil.example"),
            "expired": await refused(bare_url(stack, "seller-a"), token=stack.sellers["expired"][1]),
            "no_token": await refused(bare_url(stack, "capped")),
        }
        open_ = [await websockets.connect(ws_url(stack, "capped", token), origin=GOOD_ORIGIN) for _ in range(3)]
        for ws in open_:
            assert json.loads(await ws.recv())["type"] == "snapshot"
        out["over_cap"] = await refused(ws_url(stack, "capped", token))
        for ws in open_:
            await ws.close()
        deadline = time.monotonic() + 5  # poll: the server frees the slots once it has seen the closes
        while time.monotonic() < deadline and "after_close" not in out:
            try:
                async with websockets.connect(ws_url(stack, "capped", token), origin=GOOD_ORIGIN) as ws:
                    out["after_close"] = json.loads(await ws.recv())["type"]
            except websockets.InvalidStatus:
                await asyncio.sleep(0.1)
        return out

    out = asyncio.run(scenario())
    # Starlette answers a WebSocket closed before accept with HTTP 403: the handshake never opens.
    assert out["bad_origin"] == 403 and out["expired"] == 403 and out["no_token"] == 403
    # An expired token cannot buy a ticket either.
    r = httpx.post(
        f"{stack.api.url}/v1/ws-tickets",
        json={"seller_id": "seller-a"},
        headers={"Authorization": f"Bearer {stack.sellers['expired'][1]}"},
        timeout=10,
    )
    assert r.status_code == 401
    assert out["over_cap"] == 403
    assert out.get("after_close") == "snapshot"


def test_revoking_a_token_closes_its_open_socket(stack):
    s = stack.settings
    token, rec = keys.new_key("st", "seller-a", label="to revoke")
    keys.publish(s, rec)
    stack.wait_keys(token)

    async def scenario():
        async with websockets.connect(ws_url(stack, "seller-a", token), origin=GOOD_ORIGIN) as ws:
            await next_of(ws, "snapshot")
            started = time.monotonic()
            await asyncio.to_thread(keys.publish, s, msgspec.structs.replace(rec, revoked=True))
            with pytest.raises(websockets.ConnectionClosed) as exc:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            return exc.value.rcvd.code, time.monotonic() - started

    code, took = asyncio.run(scenario())
    assert code == 4401 and took < 5


def test_two_api_replicas_each_push_the_same_numbers_and_alerts_to_their_own_clients(stack):
    """Replicas read the whole topics (no consumer group), so each serves its own dashboards in full."""
    from api.main import create_api
    from tests.support.servers import ThreadServer

    browser, token = stack.sellers["seller-a"]
    second = ThreadServer(create_api(stack.settings, stack.registry, run_sink=False)).start()
    try:
        urls = [ws_url(stack, "seller-a", token), ws_url(stack, "seller-a", token, api=second.url)]

        async def scenario():
            async with (
                websockets.connect(urls[0], origin=GOOD_ORIGIN) as one,
                websockets.connect(urls[1], origin=GOOD_ORIGIN) as two,
            ):
                before = [(await next_of(ws, "snapshot"))["data"]["purchased_30m"] for ws in (one, two)]
                sess = "sess-replicas-01"
                r = stack.post(
                    browser,
                    {"events": [f.payment_succeeded(session_id=sess), f.payment_failed(session_id="sess-replicas-02")]},
                )
                assert r.json()["accepted"] == 2
                got = []
                for ws, b in zip((one, two), before):
                    alert = (await next_of(ws, "alert", lambda d: d.get("session_id") == "sess-replicas-02"))["data"]
                    snap = (await next_of(ws, "snapshot", lambda d, b=b: d["purchased_30m"] == b + 1))["data"]
                    got.append((alert["alert_id"], snap["purchased_30m"]))
                return got

        (alert_one, n_one), (alert_two, n_two) = asyncio.run(scenario())
        assert alert_one == alert_two and n_one == n_two
    finally:
        second.stop()
