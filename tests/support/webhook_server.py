"""A real HTTP server for webhook tests: each path is an endpoint that answers as the test says
(``ok``, ``fail`` (500), ``hang`` (holds the request until released)), and records what it received."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when the request arrived


@dataclass
class Endpoint:
    mode: str = "ok"  # ok | fail | hang
    received: list[Received] = field(default_factory=list)
    open_requests: int = 0


class WebhookServer:
    def __init__(self):
        self.endpoints: dict[str, Endpoint] = {}
        self.release = threading.Event()  # lets every hanging request go (answered 200) at the end
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ep = server.endpoints.setdefault(self.path, Endpoint())
                with server._lock:
                    ep.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    mode = ep.mode
                if mode == "hang":
                    with server._lock:
                        ep.open_requests += 1
                    server.release.wait(60)
                    with server._lock:
                        ep.open_requests -= 1
                code = 500 if mode == "fail" else 200
                payload = b"boom" if code == 500 else b"ok"
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the notifier gave up on a hanging request and closed it
                    pass

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> WebhookServer:
        self.thread.start()
        return self

    def url(self, path: str, mode: str = "ok") -> str:
        self.endpoints.setdefault(path, Endpoint()).mode = mode
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hooks() -> Iterator[WebhookServer]:
    """A ``WebhookServer`` started for one test (import it into the test module to use it)."""
    server = WebhookServer().start()
    yield server
    server.stop()
