"""The API's access log: one structured line per HTTP request (path without the query string, which may
carry a WebSocket ticket or a token an old client still sends: refused, never written down; checked by
tests/integration/test_api_ws_tickets.py). The JSON formatter itself is the core's (``livemetrics.logs``),
re-exported here."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from livemetrics import logs as _logs
from livemetrics.logs import JsonFormatter  # noqa: F401 - re-exported

log = logging.getLogger("livemetrics.api.http")


def configure(level: int = logging.INFO) -> None:
    """JSON logs for the API process (``livemetrics.logs``: the same lines as every other process)."""
    _logs.configure("api", level)


class AccessLog:
    """ASGI middleware: method, path, status and duration of each HTTP request as a structured line."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status[0],
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
