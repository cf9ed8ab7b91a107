"""``livemetrics gateway`` with ``gateway_workers`` 2 (producers/gateway/workers.py), as operators run it:
a burst of keep-alive connections is spread over both processes, every accepted event reaches Kafka, a
worker that dies is replaced, SIGTERM stops them all, and a taken port is a clear error."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from livemetrics.contract import decode
from livemetrics.topics import create_topics
from operations.command import livemetrics_argv
from producers.gateway.workers import STARTUP_S
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.integration

CONNECTIONS = 64


def start_gateway(settings, log_path) -> subprocess.Popen:
    return subprocess.Popen(
        livemetrics_argv("gateway"),
        env=settings.child_env(),
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def workers_of(proc: subprocess.Popen) -> list[psutil.Process]:
    """The gateway's worker processes (multiprocessing also starts a resource tracker)."""
    out = []
    for c in psutil.Process(proc.pid).children():
        try:
            if c.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(c.cmdline()):
                out.append(c)
        except psutil.NoSuchProcess:
            pass
    return out


def ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def post(sock: socket.socket, key: str, body: bytes) -> int:
    sock.sendall(
        b"POST /v1/events HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %b\r\nOrigin: %b\r\nContent-Type: "
        b"application/json\r\nContent-Length: %d\r\n\r\n%b" % (key.encode(), f.SHOP_ORIGIN.encode(), len(body), body)
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    return int(head[9:12])


def test_two_workers_share_the_connections_deliver_everything_and_stop_together(make_settings, add_seller, tmp_path):
    settings = make_settings(host="127.0.0.1", gateway_port=free_port(), gateway_workers=2)
    create_topics(settings)
    key, _ = add_seller(settings, "shop-w")
    proc = start_gateway(settings, tmp_path / "gateway.log")
    url = f"http://127.0.0.1:{settings.gateway_port}"
    try:
        wait_until(lambda: ready(url), 60, interval=0.2, what="the gateway ready", alive=lambda: proc.poll() is None)
        wait_until(lambda: len(workers_of(proc)) == 2, 30, what="two worker processes")
        # a burst of keep-alive connections, all opened before any is used (a connection pool starting)
        socks = [socket.create_connection(("127.0.0.1", settings.gateway_port)) for _ in range(CONNECTIONS)]
        sent = []
        for i, s in enumerate(socks):
            events = [f.page_view("category", category="lamps", session_id=f"sess-w-{i:04d}") for _ in range(3)]
            sent += [e["event_id"] for e in events]
            assert post(s, key, json.dumps({"events": events}).encode()) == 202
        per_worker = [
            sum(
                1
                for c in w.net_connections("tcp")
                if c.laddr.port == settings.gateway_port and c.status == psutil.CONN_ESTABLISHED
            )
            for w in workers_of(proc)
        ]
        assert sum(per_worker) == CONNECTIONS
        # spread by the kernel's hash of each connection: one side under a quarter is a 1-in-30,000 event
        assert min(per_worker) >= CONNECTIONS // 4, per_worker
        for s in socks:
            s.close()
        got = read_topic(settings, "page-events", expect=len(sent), timeout=30)
        assert sorted(str(decode(m.value()).event_id) for m in got) == sorted(sent)

        # a worker that dies (after its start-up) is replaced; the gateway keeps answering
        victim = workers_of(proc)[0]
        # older than STARTUP_S by its own start time (a death sooner would stop the gateway as a failed start)
        time.sleep(max(0.0, STARTUP_S + 1 - (time.time() - victim.create_time())))
        victim.send_signal(signal.SIGKILL)
        wait_until(
            lambda: len(workers_of(proc)) == 2 and victim.pid not in {w.pid for w in workers_of(proc)},
            30,
            what="a new worker in place of the killed one",
        )
        wait_until(lambda: ready(url), 30, interval=0.2, what="the gateway answering again")
        workers = workers_of(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_a_taken_port_is_a_clear_error(make_settings, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        settings = make_settings(host="127.0.0.1", gateway_port=taken.getsockname()[1], gateway_workers=2)
        proc = start_gateway(settings, tmp_path / "gateway.log")
        assert proc.wait(60) == 1
    log = (tmp_path / "gateway.log").read_text()
    assert f"cannot listen on 127.0.0.1:{settings.gateway_port}" in log and "Address already in use" in log
