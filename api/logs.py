"""Structured logs: one JSON object per line on stderr, and one line per HTTP request (path without the
query string, which may carry a token)."""

from __future__ import annotations

import json
import logging
import sys
import time

from starlette.types import ASGIApp, Receive, Scope, Send

_STD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
log = logging.getLogger("livemetrics.api.http")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in _STD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: int = logging.INFO) -> None:
    """JSON logs for the ``livemetrics`` loggers (idempotent; other libraries keep their own handlers)."""
    root = logging.getLogger("livemetrics")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


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
            log.info("request", extra={"method": scope["method"], "path": scope["path"], "status": status[0],
                                       "ms": round((time.perf_counter() - started) * 1000, 1)})
