"""librdkafka's log lines as Python log records, each kind at most once a minute per client.

Left to itself librdkafka prints to stderr, and while the broker is away each client prints a
``Connect to ... failed: Connection refused`` line every 50 ms or so (its sparse-connection interval is
half of ``reconnect.backoff.ms``, whatever the backoff has grown to): 1,150 lines a minute from one
consumer, measured, ~10,000 over a 163-s outage from one process's clients. Through the ``logger``
setting (``kafka_config``) the lines come here instead, served by the client's own ``poll()``, and
``ClientLineThrottle`` lets a line of a given kind (client, facility, and the text with its numbers
taken out, so every port, broker id and elapsed time is the same kind) through at once, then once per
``interval_s`` with a count of those held back. The first failure is therefore logged when it happens;
the end of an outage is logged by whoever waited for the broker (the gateway's delivery logs its first
acknowledgement after a failure)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

LOGGER_NAME = "livemetrics.kafka_client"
_NUMBERS = re.compile(r"\d+")
# librdkafka's own count of a repeated error ("(after 0ms in state CONNECT, 1 identical error(s) suppressed)"):
# the same line, so the same kind
_SUPPRESSED = re.compile(r", \d+ identical error\(s\) suppressed")


class ClientLineThrottle(logging.Filter):
    """Passes a librdkafka record (``msg`` ``"%s [%s] %s"``, args facility, client name, text) at most
    once per ``interval_s`` for its kind; other records pass untouched."""

    MAX_KINDS = 10_000  # kinds are texts without numbers, so few; bounded anyway

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._last: dict[tuple[str, ...], float] = {}
        self._held: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()  # clients log from whichever thread polls them

    @staticmethod
    def kind(record: logging.LogRecord) -> tuple[str, ...] | None:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 3:
            return None
        facility, client, text = (str(a) for a in args)
        return (client, facility, _NUMBERS.sub("#", _SUPPRESSED.sub("", text)))

    def filter(self, record: logging.LogRecord) -> bool:
        key = self.kind(record)
        if key is None:
            return True
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            if len(self._last) >= self.MAX_KINDS:
                self._last.clear()
                self._held.clear()
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held and last is not None:
            record.msg = f"{record.msg} ({held} more like this in the last {now - last:.0f} s)"
        return True


def client_logger() -> logging.Logger:
    """The logger every confluent-kafka client of ours logs to (``kafka_config``), throttled once."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, ClientLineThrottle) for f in logger.filters):
        logger.addFilter(ClientLineThrottle())
    return logger
