"""``livemetrics gateway`` with ``gateway_workers`` 2: the rate limits and the replay check hold for the
gateway, not once per process (producers/gateway/auth.py, SharedState). Before, each process had its own
buckets and its own replay cache: a key sending on connections that landed on both processes got twice
its rate, and a captured signed request was accepted once more by the other process."""

from __future__ import annotations

import json
import signal
import socket

import psutil
import pytest

from livemetrics import keys
from livemetrics.topics import create_topics
from tests.integration.test_gateway_keys import signed
from tests.integration.test_gateway_workers import ready, start_gateway, workers_of
from tests.support import factories as f
from tests.support.servers import wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.integration

RATE = 10  # events/s of the browser key and of one client IP: a burst of 20


def request(sock: socket.socket, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        b"POST /v1/events HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n%bContent-Length: %d\r\n\r\n%b"
        % (head.encode(), len(body), body)
    )
    return response(sock)


def response(sock: socket.socket) -> tuple[int, dict]:
    got = b""
    while b"\r\n\r\n" not in got:
        got += received(sock)
    top, _, rest = got.partition(b"\r\n\r\n")
    length = int(next(h for h in top.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(b":")[1])
    while len(rest) < length:
        rest += received(sock)
    return int(top[9:12]), json.loads(rest)


def received(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    assert chunk, "the gateway closed the connection"
    return chunk


def healthz(sock: socket.socket) -> None:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
    assert response(sock)[0] == 200


def one_connection_per_worker(proc, port: int) -> list[socket.socket] | None:
    """Two keep-alive connections, each held by a different worker process (the kernel spreads them over
    the processes listening), or None when all went to one (the other not serving yet)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(24)]
    for s in socks:
        healthz(s)  # accepted and answered: held by a process that serves
    holder = {}
    for w in workers_of(proc):
        for c in w.net_connections("tcp"):
            if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED and c.raddr:
                holder[c.raddr.port] = w.pid
    picked: dict[int, socket.socket] = {}
    for s in socks:
        pid = holder.get(s.getsockname()[1])
        if pid is not None and pid not in picked:
            picked[pid] = s
    for s in socks:
        if s not in picked.values():
            s.close()
    if len(picked) == 2:
        return list(picked.values())
    for s in picked.values():
        s.close()
    return None


def browser(key: str, ip: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Origin": f.SHOP_ORIGIN, "X-Forwarded-For": ip}


def events(n: int) -> bytes:
    return json.dumps({"events": [f.page_view() for _ in range(n)]}).encode()


def test_rate_limits_and_replays_hold_across_the_gateways_processes(make_settings, tmp_path):
    settings = make_settings(
        host="127.0.0.1",
        gateway_port=free_port(),
        gateway_workers=2,
        client_ip_rate_per_s=RATE,
        trusted_proxies=["127.0.0.1/32"],  # the test names each request's client IP
    )
    create_topics(settings)
    kek = settings.key_encryption_key.get_secret_value()
    slow, slow_rec = keys.new_key("pk", "shop-s", origins=[f.SHOP_ORIGIN], rate_per_s=RATE)
    fast, fast_rec = keys.new_key("pk", "shop-s", origins=[f.SHOP_ORIGIN], rate_per_s=100_000)
    server, server_rec = keys.new_server_key("shop-s", kek)
    keys.publish_all(settings, [slow_rec, fast_rec, server_rec])
    proc = start_gateway(settings, tmp_path / "gateway.log")
    url = f"http://127.0.0.1:{settings.gateway_port}"
    try:
        wait_until(lambda: ready(url), 60, interval=0.2, what="the gateway ready", alive=lambda: proc.poll() is None)
        wait_until(lambda: len(workers_of(proc)) == 2, 30, what="two worker processes")
        pair: list = []
        wait_until(
            lambda: bool(pair.extend(one_connection_per_worker(proc, settings.gateway_port) or []) or pair),
            30,
            interval=0.5,
            what="a connection held by each worker",
        )
        a, b = pair

        # The key's burst spent on one process is spent on the other (each request from its own client IP).
        status, _ = request(a, events(2 * RATE), browser(slow, "198.51.100.1"))
        assert status == 202
        status, body = request(b, events(2 * RATE), browser(slow, "198.51.100.2"))
        assert status == 429 and f"key {slow_rec.key_id} is over its rate limit" in body["error"], body

        # So is one client IP's, whatever the key.
        status, _ = request(a, events(2 * RATE), browser(fast, "203.0.113.7"))
        assert status == 202
        status, body = request(b, events(2 * RATE), browser(fast, "203.0.113.7"))
        assert status == 429 and "client IP 203.0.113.7 is over the per-client limit" in body["error"], body

        # A signed request accepted by one process is a replay to the other.
        payload = events(1)
        headers = signed(server, payload)
        status, _ = request(a, payload, headers)
        assert status == 202
        status, body = request(b, payload, headers)
        assert status == 401 and "replayed signature" in body["error"], body
        a.close()
        b.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
