"""The gateway and the API as operators run them (``livemetrics gateway``, ``livemetrics api``): a request
head too large gets 431, one too slow (or a connection that sends nothing) gets 408, so does a body
trickled too slowly, and the process answers everyone else (livemetrics/http_head.py). Before, with
uvicorn's httptools parser, an endless header grew the process without bound and got no answer, and a
silent connection, or one sending its body a byte at a time, stayed open forever."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from tests.integration.test_api_ws_floods import FLOODER
from tests.support.http_processes import answer, api_process, gateway_process
from tests.support.services import free_port

pytestmark = pytest.mark.integration

HEAD_S = 1.0  # the head's and the body's timeouts in these tests


def huge_header(port: int) -> bytes:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    try:
        for _ in range(64):  # 4 MB, far over the limit; the server stops reading (and closes) long before
            sock.sendall(b"a" * 65536)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        return answer(sock, 10)
    finally:
        sock.close()


def checks(port: int, post_path: bytes) -> None:
    long_query = socket.create_connection(("127.0.0.1", port))  # ~27 ms of query parsing per request before
    long_query.sendall(b"POST %b?%b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % (post_path, b"a=1&" * 4000))
    got = answer(long_query, 10)
    assert got.startswith(b"HTTP/1.1 414 ") and b"request target (path and query) over 8192 bytes" in got, got
    long_query.close()

    got = huge_header(port)
    assert got.startswith(b"HTTP/1.1 431 ") and b"request head (request line and headers) over 65536 bytes" in got, got

    slow = socket.create_connection(("127.0.0.1", port))
    silent = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # half a head, and nothing more
    started = time.monotonic()
    got = answer(slow, 10 * HEAD_S)
    assert got.startswith(b"HTTP/1.1 408 ") and f"not received within {HEAD_S:g} s".encode() in got, got
    assert time.monotonic() - started < 5 * HEAD_S
    assert answer(silent, 10 * HEAD_S) == b""  # closed (as an idle keep-alive connection), not held forever
    assert time.monotonic() - started < 5 * HEAD_S
    slow.close()
    silent.close()

    trickle = socket.create_connection(("127.0.0.1", port))  # a whole head, then 10 of its 100 body bytes
    trickle.sendall(
        b'POST %b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a": 1234'
        % post_path
    )
    started = time.monotonic()
    got = answer(trickle, 10 * HEAD_S)
    assert got.startswith(b"HTTP/1.1 408 ") and f"body not received within {HEAD_S:g} s".encode() in got, got
    assert time.monotonic() - started < 5 * HEAD_S
    trickle.close()

    ok = socket.create_connection(("127.0.0.1", port))  # and everyone else is answered
    ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer(ok, 10).startswith(b"HTTP/1.1 200 ")
    ok.close()


def test_the_gateway_refuses_heads_too_large_or_too_slow_and_slow_bodies(make_settings, tmp_path):
    settings = make_settings(
        host="127.0.0.1", gateway_port=free_port(), http_head_timeout_s=HEAD_S, http_body_timeout_s=HEAD_S
    )
    with gateway_process(settings, tmp_path):
        checks(settings.gateway_port, b"/v1/events")


def test_the_api_refuses_heads_too_large_or_too_slow_and_slow_bodies(make_settings, tmp_path):
    settings = make_settings(api_port=free_port(), http_head_timeout_s=HEAD_S, http_body_timeout_s=HEAD_S)
    with api_process(settings, tmp_path):
        checks(settings.api_port, b"/v1/admin/erase")
        # and the process serves WebSockets with its bounded protocol (livemetrics/ws_protocol.py): a socket
        # flooding pings is closed, 1008 (tests/integration/test_api_ws_floods.py has the rest)
        token = settings.admin_token.get_secret_value()
        argv = [sys.executable, "-c", FLOODER, str(settings.api_port), "/v1/sellers/any/live/ws", token, "ping"]
        flood = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        result = json.loads(flood.stdout.splitlines()[-1])
        assert result["closed"] and result["close_code"] == 1008, result
