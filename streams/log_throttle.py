"""Repeated client-library log lines, at most once per interval each.

While the broker is down, aiokafka logs every failed connection, metadata update, fetch and heartbeat:
about a hundred lines a second from one worker (measured over a 217-s outage: 24,000 lines). The first
line of each kind says what happened; the rest bury everything else. ``RepeatFilter`` lets a line with
the same logger, level and format string through once per ``interval_s`` and counts what it held back
in the next one that passes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RepeatFilter(logging.Filter):
    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._last: dict[tuple, float] = {}
        self._held: dict[tuple, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {now - last:.0f} s)"
        if len(self._last) > 10_000:  # format strings, not values: stays small; bounded anyway
            self._last.clear()
        return True


def install(prefixes: tuple[str, ...], interval_s: float = 10.0) -> int:
    """Throttle every logger named ``prefix`` or ``prefix.*`` that exists now (a logger's filters do not
    apply to its children's records, so each gets one; the libraries create theirs at import). Returns
    how many loggers were throttled."""
    import importlib

    for prefix in prefixes:  # the package's modules create their loggers when imported
        importlib.import_module(prefix)
    shared = RepeatFilter(interval_s)
    names = [
        n for n in list(logging.Logger.manager.loggerDict) if any(n == p or n.startswith(p + ".") for p in prefixes)
    ]
    for name in set(names) | set(prefixes):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(shared)
    return len(set(names) | set(prefixes))
