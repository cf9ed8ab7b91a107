"""A dashboard socket whose client never reads (docs/security.md, WebSockets): once the server's pushes fill
the connection's buffers, the socket answers no ping, and the API drops it after the keepalive's timeout,
freeing its seller's and its client's socket slots and its buffers. Before, uvicorn's keepalive timeout
(and every other close of the protocol) called ``transport.close()``, which waits for the write buffer to
drain: with a peer that never reads it never did, so the connection, its file descriptor, its buffers and
its slot stayed until the process ended (a seller token opening such sockets again and again used up the
process's descriptors and ``ws_max_total`` for every seller)."""

from __future__ import annotations

import json
import socket
import time

import msgspec
import pytest
from confluent_kafka import Producer
from websockets.sync.client import connect

from api import ws_limits
from livemetrics.kafka_config import producer_config
from tests.support.servers import wait_until
from tests.support.ws_api import ws_api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(kafka, clickhouse_dsn, tmp_path_factory):
    def keepalive_1s(server) -> None:
        server.server.config.ws_ping_interval = 1.0  # ThreadServer turns the keepalive off; read when it starts

    # As `livemetrics api` serves, with the keepalive scaled from 20 s to 1 s.
    tmp = tmp_path_factory.mktemp("wsneverreads")
    with ws_api(kafka, clickhouse_dsn, tmp, configure=keepalive_1s, ws_ping_timeout=1.0) as api:
        yield api


def _open_and_never_read(port: int, path: str, token: str) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window, filled at once
    s.connect(("127.0.0.1", port))
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    assert b" 101 " in s.recv(256).split(b"\r\n")[0]  # the handshake's answer only; nothing read after it
    return s


def test_a_socket_that_never_reads_is_dropped_after_the_keepalive_timeout(api):
    s, tokens, server, app = api["settings"], api["tokens"], api["server"], api["app"]
    feed = app.state.feed
    sock = _open_and_never_read(server.port, "/v1/sellers/shop-a/live/ws", tokens["shop-a"])
    try:
        wait_until(lambda: feed.count("shop-a") == 1, 10, what="the socket subscribed")
        producer = Producer(producer_config(s))
        pad = "x" * 400_000
        for i in range(40):  # 16 MB of snapshots: more than the kernel's buffers on both ends hold
            snap = {"seller_id": "shop-a", "i": i, "pad": pad, "as_of_ms": int(time.time() * 1000)}
            producer.produce(s.topic("live-metrics"), key=b"shop-a", value=msgspec.json.encode(snap))
            producer.flush(10)
            # Each snapshot pushed before the next: the latest-wins slot would otherwise coalesce them.
            wait_until(lambda i=i: feed.latest.get("shop-a", {}).get("i") == i, 10, what=f"snapshot {i} read")
        # The pushes stall on the full buffers; the next ping goes unanswered and the keepalive gives up
        # after 1 s: the socket and its slot go within a few seconds.
        wait_until(lambda: feed.count("shop-a") == 0, 15, what="the never-reading socket dropped")
        assert ws_limits.slots_of(app).total == 0  # the process's and the client's socket slots are free
        sock.settimeout(10)
        try:  # the connection itself is gone: what the kernel held for us, then its end (or a reset)
            while sock.recv(1 << 20):
                pass
        except ConnectionResetError:
            pass
        # Another seller's dashboard is served as before.
        with connect(
            f"ws://127.0.0.1:{server.port}/v1/sellers/shop-b/live/ws",
            additional_headers={"Authorization": f"Bearer {tokens['shop-b']}"},
            open_timeout=10,
        ) as other:
            assert json.loads(other.recv(10))["type"] == "snapshot"
    finally:
        sock.close()
