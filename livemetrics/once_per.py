"""A log line (or any act) at most once per interval per key: shared by the services (the worker's
refusal lines per seller, the gateway's X-Forwarded-For warning)."""

from __future__ import annotations

from collections.abc import Callable


class OncePer:
    """True for a key at most once per ``interval_s`` (a log line per seller per minute); keeps at most
    ``max_keys`` keys (then starts again: a line more, never unbounded memory)."""

    def __init__(self, interval_s: float, clock: Callable[[], float], max_keys: int = 10_000) -> None:
        self.interval_s, self.clock, self.max_keys = interval_s, clock, max_keys
        self._last: dict[str, float] = {}

    def due(self, key: str) -> bool:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        if len(self._last) >= self.max_keys:
            self._last.clear()
        self._last[key] = now
        return True
