"""Structured logs for every process: one JSON object per line on stderr, the same fields everywhere.

Fields: ``ts`` (epoch seconds), ``level``, ``logger``, ``msg``, ``service`` (gateway, worker, sink, api,
...), ``pid``, then whatever the call passed in ``extra``, and ``exc`` with the traceback when there is
one. The libraries' own records (uvicorn, aiokafka, faust, confluent-kafka's wrappers) go through the
same handler on the root logger, from WARNING up; the ``livemetrics`` loggers from INFO up.
"""

from __future__ import annotations

import json
import logging
import sys

_STD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "livemetrics"):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
            "pid": record.process,
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STD and k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def handler(service: str) -> logging.Handler:
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonFormatter(service))
    return h


def configure(service: str, level: int = logging.INFO) -> None:
    """JSON lines on stderr for this process (idempotent: a second call only renames the service)."""
    root = logging.getLogger()
    mine = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
    if mine:
        for h in mine:
            h.formatter.service = service  # type: ignore[union-attr]
    else:
        root.addHandler(handler(service))
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    lm = logging.getLogger("livemetrics")
    lm.setLevel(level)
    lm.propagate = True
    for h in [h for h in lm.handlers if isinstance(h.formatter, JsonFormatter)]:
        lm.removeHandler(h)  # from an older configure that wrote here directly: one line per record


def dict_config(service: str, level: int = logging.INFO) -> dict:
    """The same set-up as ``configure``, as a ``logging.config.dictConfig`` dict (Faust's worker takes
    one: ``faust.Worker(logging_config=...)`` replaces its coloured console handler)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "livemetrics.logs.JsonFormatter", "service": service}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "json"}},
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {"livemetrics": {"level": logging.getLevelName(level), "propagate": True}},
    }
