"""How ``livemetrics up`` tells a stopped or hung child from a quiet one (operations/liveness.py), against
real sockets: an HTTP server that answers, a listener that accepts and never answers (what the kernel
does for a SIGSTOPped process), a closed port."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from operations.liveness import Liveness, http_answers, kafka_answers
from tests.support.servers import wait_until


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(404)  # any status below 500: it answered, so it runs
        self.end_headers()

    def log_message(self, *args):
        pass


class _Stuck(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(503)  # answers, but says it is stuck (a worker whose event loop does not run)
        self.end_headers()

    def log_message(self, *args):
        pass


class _Child:
    def __init__(self, name: str, url: str):
        self.name, self.url, self.started_at = name, url, time.monotonic()

    def alive(self) -> bool:
        return True

    def answers(self, client: httpx.Client) -> bool:
        return http_answers(client, self.url)


def test_an_answering_child_stays_quiet_and_a_silent_one_is_counted_from_its_last_answer():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts, never answers
    ok = _Child("ok", f"http://127.0.0.1:{server.server_address[1]}/healthz")
    hung = _Child("hung", f"http://127.0.0.1:{server.server_address[1]}/healthz")
    never = _Child("never", f"http://127.0.0.1:{silent.getsockname()[1]}/healthz")
    live = Liveness(lambda: [ok, hung, never], every_s=0.05).start()
    try:
        wait_until(lambda: live.silent_s(hung, time.monotonic()) > 0, 10, interval=0.05, what="hung answered once")
        hung.url = never.url  # from now on it accepts and never answers
        wait_until(lambda: live.silent_s(hung, time.monotonic()) > 2.5, 15, interval=0.1, what="hung silent")
        now = time.monotonic()  # ok is asked first in each round and answers every time
        assert live.silent_s(ok, now) < live.silent_s(hung, now)
        assert live.silent_s(never, time.monotonic()) == 0.0  # never answered since its start: not judged
        hung.started_at = time.monotonic()  # restarted: its old silence no longer counts
        assert live.silent_s(hung, time.monotonic()) == 0.0
    finally:
        live.stop()
        server.shutdown()
        silent.close()


def test_kafka_answers_needs_an_answer_not_a_connection():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        started = time.monotonic()
        assert not kafka_answers(silent.getsockname(), timeout=0.3)
        assert time.monotonic() - started < 2
    finally:
        silent.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert not kafka_answers(("127.0.0.1", port), timeout=0.3)


def test_a_503_from_healthz_is_no_answer():
    """The worker's /healthz is served from a thread: it answers 503 when its event loop is stuck."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (_Ok, _Stuck)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with httpx.Client(timeout=2) as client:
            ok, stuck = (http_answers(client, f"http://127.0.0.1:{s.server_address[1]}/healthz") for s in servers)
        assert ok and not stuck
    finally:
        for server in servers:
            server.shutdown()
