"""A client that asks and never reads the answer (livemetrics/unread_peer.py), against the API and the gateway
as operators run them: ``/openapi.json`` needs no key or token, and a few requests pipelined on one
connection make more than the kernels' buffers hold. The server stops sending once its write buffer is over
the high-water mark, and the connection is aborted ``http_send_stall_s`` later. Before, uvicorn waited for
the buffer to drain forever (and its close, after a keep-alive timeout, too): every such connection, its file
descriptor and its buffers stayed until the process ended, and a few thousand of them used up the process's
descriptors for every seller."""

from __future__ import annotations

import socket
import time

import psutil
import pytest

from tests.support.http_processes import api_process, gateway_process
from tests.support.http_processes import get as _get
from tests.support.servers import wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.integration

STALL_S = 1.0
CONNECTIONS = 4


def _ask_and_never_read(port: int, path: bytes, requests: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window, filled at once
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET %b HTTP/1.1\r\nHost: x\r\n\r\n" % path * requests)  # pipelined, kept alive
    return s


def _held(pid: int, port: int) -> int:
    """Connections the server process holds open on its port."""
    return sum(
        1
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def _check(pid: int, port: int) -> None:
    # the first answer builds the OpenAPI document (seconds on a loaded machine: get() gives up after 2 s)
    wait_until(lambda: len(_get(port, b"/openapi.json")) > 10_000, 30, what="the OpenAPI document served")
    size = len(_get(port, b"/openapi.json"))
    assert size > 10_000, size
    requests = 20_000_000 // size + 1  # ~20 MB asked on each connection: more than any kernel buffers hold
    socks = [_ask_and_never_read(port, b"/openapi.json", requests) for _ in range(CONNECTIONS)]
    try:
        wait_until(lambda: _held(pid, port) >= CONNECTIONS, 10, what="the connections served")
        started = time.monotonic()
        # the write buffers fill within a second; the stall's abort follows STALL_S later
        wait_until(lambda: _held(pid, port) == 0, 15, what="the unread connections dropped")
        took = time.monotonic() - started
        assert took < 10, took
        assert b" 200 " in _get(port, b"/healthz")  # and everyone else is answered
    finally:
        for s in socks:
            s.close()


def test_the_api_drops_connections_that_never_read_their_answers(make_settings, tmp_path):
    settings = make_settings(api_port=free_port(), http_send_stall_s=STALL_S)
    with api_process(settings, tmp_path) as proc:
        _check(proc.pid, settings.api_port)


def test_the_gateway_drops_connections_that_never_read_their_answers(make_settings, tmp_path):
    settings = make_settings(host="127.0.0.1", gateway_port=free_port(), gateway_workers=1, http_send_stall_s=STALL_S)
    with gateway_process(settings, tmp_path) as proc:
        _check(proc.pid, settings.gateway_port)
