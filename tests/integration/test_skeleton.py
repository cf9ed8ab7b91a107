"""One event all the way: HTTP -> Kafka -> Faust -> live-metrics -> API (REST + WebSocket) and
Kafka -> ClickHouse sink -> hourly report. Real broker, real worker process, real ClickHouse engine."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from api.main import create_api
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.servers import ThreadServer, WorkerProcess, get_json, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(settings, tmp_path, add_seller):
    keys_a = add_seller(settings, "seller-a")
    keys_b = add_seller(settings, "seller-b")
    keys_w = add_seller(settings, "warmup")
    registry = KeyRegistry(settings).start()
    worker = WorkerProcess(settings, tmp_path).start()
    gateway = ThreadServer(create_gateway(settings, registry)).start()
    api = ThreadServer(create_api(settings, registry)).start()
    wait_until(lambda: registry.record(keys_w[1].split("_")[2]) is not None, 10, what="keys loaded")
    try:
        yield {
            "settings": settings,
            "gateway": gateway,
            "api": api,
            "worker": worker,
            "a": keys_a,
            "b": keys_b,
            "w": keys_w,
        }
    finally:
        api.stop()
        gateway.stop()
        worker.stop()
        registry.stop()


def post(gateway: ThreadServer, key: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/events", json=body, timeout=15, headers=f.browser_headers(key))


def live(api: ThreadServer, seller: str, token: str) -> dict:
    return get_json(f"{api.url}/v1/sellers/{seller}/live", token)


def test_page_views_reach_rest_websocket_and_clickhouse(stack):
    gw, api = stack["gateway"], stack["api"]
    # Warm-up: the worker process has joined its group once a snapshot for this seller appears.
    assert post(gw, stack["w"][0], f.page_view()).status_code == 202
    worker = stack["worker"]
    try:
        wait_until(
            lambda: live(api, "warmup", stack["w"][1])["live"]["home"] == 1, 60, what="worker start", alive=worker.alive
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.log_tail()}") from None

    async def scenario():
        # The dashboard's way in: the token (in a header) buys a single-use ticket for the URL.
        r = httpx.post(
            f"{api.url}/v1/ws-tickets",
            json={"seller_id": "seller-a"},
            headers={"Authorization": f"Bearer {stack['a'][1]}"},
            timeout=10,
        )
        ws_url = api.url.replace("http", "ws") + r.json()["ws_path"]
        async with websockets.connect(ws_url) as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "snapshot" and first["data"]["live"]["home"] == 0
            started = time.monotonic()
            r_a = post(gw, stack["a"][0], {"events": [f.page_view() for _ in range(3)]})
            r_b = post(
                gw, stack["b"][0], {"events": [f.page_view(), f.page_view(), f.page_view("category", category="lamps")]}
            )
            assert r_a.status_code == 202 and r_a.json() == {"accepted": 3, "rejected": []}
            assert r_b.status_code == 202 and r_b.json()["accepted"] == 3
            while True:
                left = 2.0 - (time.monotonic() - started)
                msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=max(left, 0.01)))
                if msg["type"] == "snapshot" and msg["data"]["live"]["home"] == 3:
                    break
            return time.monotonic() - started

    took = asyncio.run(scenario())
    assert took <= 2.0
    snap_a = live(api, "seller-a", stack["a"][1])
    assert snap_a["live"]["home"] == 3 and snap_a["window_s"] == 300
    # Snapshots go out as each partition's numbers change: wait for all of seller-b's (its three
    # sessions may sit on three partitions, reported one after another), within the same 2 s.
    snap_b = wait_until(
        lambda: (s := live(api, "seller-b", stack["b"][1]))["active_sessions"] == 3 and s, 2, what="seller-b"
    )
    assert snap_b["live"]["home"] == 2 and snap_b["live"]["category"] == {"lamps": 1}

    def hourly():
        rows = get_json(f"{api.url}/v1/sellers/seller-a/reports/hourly?tz=UTC", stack["a"][1])["rows"]
        return rows and rows

    rows = wait_until(hourly, 15, interval=0.3, what="rows in ClickHouse")
    assert sum(r["page_views"] for r in rows) == 3 and sum(r["sessions"] for r in rows) == 3
    # seller-b's rows may come in a later sink batch than seller-a's
    rows_b = wait_until(
        lambda: get_json(f"{api.url}/v1/sellers/seller-b/reports/hourly?tz=UTC", stack["b"][1])["rows"],
        15,
        interval=0.3,
        what="seller-b's rows in ClickHouse",
    )
    assert sum(r["page_views"] for r in rows_b) == 3


def test_a_token_never_reads_another_seller(stack):
    api = stack["api"]
    r = httpx.get(f"{api.url}/v1/sellers/seller-b/live", headers={"Authorization": f"Bearer {stack['a'][1]}"})
    assert r.status_code == 404 and "seller-b" not in r.text.replace("no such seller", "")
    r = httpx.get(f"{api.url}/v1/sellers/seller-b/reports/hourly", headers={"Authorization": f"Bearer {stack['a'][1]}"})
    assert r.status_code == 404
    r = httpx.get(f"{api.url}/v1/sellers/seller-a/live")
    assert r.status_code == 401
