"""This process's inserts into ``events`` still running, for the session fold (``session_fold.fold_until``).

An insert labels its ``session_updates`` rows with the 10 s bucket of the server's clock when migration 013's
view computes them (its ``now()``: per block, never before the insert started) and they become visible
only when the view's part is written, which a busy server can take seconds to do. A fold that passed that
bucket before the commit would never take those rows: their sessions would be missing from the reports'
folded sums for good. ``session_fold_grace_s`` covers an insert shorter than the grace; this covers every
insert of the process, however long (a loaded machine, a slow server, a batch being narrowed down): the fold
stays behind the start of the oldest one still running. Inserts of other processes (other sinks on a
ClickHouse server) are covered by the grace alone."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class InsertsInFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}
        self._ids = itertools.count()

    @contextmanager
    def inserting(self) -> Iterator[None]:
        """Around one insert into ``events`` (each retry again: the server reads its clock again)."""
        key = next(self._ids)
        with self._lock:
            self._started[key] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                del self._started[key]

    def oldest_age_s(self) -> float:
        """How long the oldest insert still running has been running (0 when none is)."""
        with self._lock:
            oldest = min(self._started.values(), default=None)
        return 0.0 if oldest is None else time.monotonic() - oldest

    def running(self) -> int:
        with self._lock:
            return len(self._started)


IN_FLIGHT = InsertsInFlight()
