"""/healthz, /readyz and /metrics for the processes that run no web framework (the stream worker, the
standalone sink): a small threaded HTTP server beside the process's real work.

- ``/healthz``: 200 while the process runs; 503 with the reasons when its ``alive()`` callback says no (the
  worker's: its event loop has stopped running, ``livemetrics/loop_watch.py``), since this thread
  answers whatever the process's real work is doing.
- ``/readyz``: 200 or 503 from the process's ``ready()`` callback, with the reasons as JSON.
- ``/metrics``: prometheus-client's default registry (the collectors the process registered).

A port that is taken is logged as an error and the process goes on without these endpoints: a
worker must keep counting even when its metrics port is held (e.g. two workers on one machine with
the same settings); give each its own port, or 0 to turn them off.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger("livemetrics.ops")

Ready = Callable[[], tuple[bool, dict]]  # (ready?, details shown in the /readyz body)
Alive = Callable[[], tuple[bool, dict]]  # (alive?, details shown in the /healthz body)


def _always_alive() -> tuple[bool, dict]:
    return True, {}


def _handler(service: str, ready: Ready, alive: Alive) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                ok, details = alive()
                body = {"status": "ok", "service": service, **details}
                self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
            elif path == "/readyz":
                try:
                    ok, details = ready()
                except Exception as exc:  # noqa: BLE001 - a failing check means not ready, said why
                    ok, details = False, {"error": f"{type(exc).__name__}: {exc}"}
                body = {"status": "ok" if ok else "unavailable", "service": service, **details}
                self._send(200 if ok else 503, "application/json", json.dumps(body, default=str).encode())
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            else:
                self._send(404, "application/json", b'{"detail": "not found"}')

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # scrapes every few seconds would flood the log
            pass

    return Handler


class OpsServer:
    """The three endpoints on ``host:port`` in a daemon thread; ``start()`` returns None when the port
    cannot be bound (logged)."""

    def __init__(self, service: str, host: str, port: int, ready: Ready, alive: Alive = _always_alive):
        self.service, self.host, self.port, self.ready, self.alive = service, host, port, ready, alive
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> OpsServer | None:
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), _handler(self.service, self.ready, self.alive))
        except OSError as exc:
            log.error(
                "%s: cannot serve /healthz, /readyz, /metrics on %s:%s: %s (running without them)",
                self.service,
                self.host,
                self.port,
                exc,
                extra={"port": self.port},
            )
            return None
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"{self.service}-ops-http", daemon=True).start()
        log.info("serving /healthz, /readyz, /metrics on %s:%s", self.host, self.port, extra={"port": self.port})
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
