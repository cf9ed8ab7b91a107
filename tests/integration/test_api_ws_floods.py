"""One dashboard socket flooding the API (docs/security.md, WebSockets): pings, empty continuation frames,
or messages followed by more after the server's close, as fast as a client process can write them. The
socket is closed (1008 naming the limit) and dropped within a second, and another seller's dashboard gets
its snapshots meanwhile. Before (uvicorn's own protocol), any of the three kept the API's event loop busy:
the other seller's snapshot did not arrive within 30 s."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import msgspec
import pytest
import websockets
from confluent_kafka import Producer

from livemetrics.kafka_config import producer_config
from tests.support.ws_api import ws_api

pytestmark = pytest.mark.integration

# A raw WebSocket client: handshake with a token, then frames of one kind as fast as it can write for at
# most 15 s; prints "flooding" once it has started, then {"frames", "closed", "close_code", "reason", "s"}.
FLOODER = r"""
import base64, json, os, socket, sys, time
port, path, token, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port))
s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
           f"Authorization: Bearer {token}\r\n\r\n").encode())
assert b" 101 " in s.recv(65536).split(b"\r\n")[0]
mask = b"\0\0\0\0"
frame = {"text": b"\x81\x81" + mask + b"x", "ping": b"\x89\x80" + mask, "cont": b"\x00\x80" + mask}[mode]
if mode == "cont":
    s.sendall(b"\x01\x80" + mask)  # a text message begun, never finished
chunk, frames, closed, start = frame * 2000, 0, False, time.monotonic()
print("flooding", flush=True)
s.settimeout(5)
try:
    while time.monotonic() - start < 15:
        s.sendall(chunk)
        frames += 2000
except OSError:
    closed = True
took = time.monotonic() - start
got = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except OSError:
    pass
i = got.find(b"\x88")  # the server's close frame, if it reached us: code and reason
code = int.from_bytes(got[i + 2 : i + 4], "big") if i >= 0 else None
reason = got[i + 4 : i + 2 + got[i + 1]].decode(errors="replace") if i >= 0 else None
print(json.dumps({"frames": frames, "closed": closed, "close_code": code, "reason": reason, "s": took}), flush=True)
"""


@pytest.fixture(scope="module")
def api(kafka, clickhouse_dsn, tmp_path_factory):
    with ws_api(kafka, clickhouse_dsn, tmp_path_factory.mktemp("wsfloods")) as api:
        yield api


@pytest.mark.parametrize("mode", ["ping", "cont", "text"])
def test_a_flooding_socket_is_dropped_and_another_seller_still_gets_snapshots(api, mode):
    s, tokens, server = api["settings"], api["tokens"], api["server"]
    producer = Producer(producer_config(s))

    async def other_seller_latencies(n: int) -> list[float]:
        url = f"ws://127.0.0.1:{server.port}/v1/sellers/shop-b/live/ws"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {tokens['shop-b']}"}) as ws:
            await asyncio.wait_for(ws.recv(), 10)
            flooder = subprocess.Popen(
                [sys.executable, "-c", FLOODER, str(server.port), "/v1/sellers/shop-a/live/ws", tokens["shop-a"], mode],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert flooder.stdout is not None
            assert flooder.stdout.readline().strip() == "flooding"
            took = []
            for i in range(n):
                t0 = time.monotonic()
                snap = {"seller_id": "shop-b", "i": f"{mode}-{i}", "as_of_ms": int(time.time() * 1000)}
                producer.produce(s.topic("live-metrics"), key=b"shop-b", value=msgspec.json.encode(snap))
                producer.flush(10)
                while (m := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != "snapshot" or m["data"].get(
                    "i"
                ) != snap["i"]:
                    pass
                took.append(time.monotonic() - t0)
            result = json.loads(flooder.communicate(timeout=60)[0].splitlines()[-1])
            return took, result

    took, result = asyncio.run(other_seller_latencies(3))
    assert result["closed"], f"the flooding socket is still open after {result['frames']} frames"
    assert result["s"] < 5, result
    assert max(took) < 5, f"another seller's snapshots took {took} s"
    # the frame budget (several frames arrive in one read), or for messages the app's budget (api/ws_limits.py)
    assert result["close_code"] == 1008, result
    assert "too many frames" in result["reason"] or (mode == "text" and "too many client messages" in result["reason"])
