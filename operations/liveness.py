"""Is each child of ``livemetrics up`` still answering? A dead child is seen by its exit code; a stopped or
hung one (SIGSTOP, a deadlock, a lost disk) keeps running and is seen only by asking it.

A daemon thread asks every child's ``/healthz`` in turn, every ``PROBE_EVERY_S``, and records when each
last answered (any HTTP status: it answered, so it runs). ``up``'s main thread reads ``silent_s`` and
kills a child silent for longer than ``hung_child_s``; the restart then follows as for any death
(supervise.py). The probes run on their own thread so that a child that accepts a connection and never
answers (the kernel accepts for a stopped process) does not hold up the supervision of the others.

A child is judged only after it answered once since its start: start-up (migrations, a recovery) has
its own wait, and the restart backoff gives a child that keeps failing to start a death count anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import httpx

PROBE_EVERY_S = 2.0
PROBE_TIMEOUT_S = 2.0


class Liveness:
    """The time each child (by name) last answered its health URL, as measured by one probing thread."""

    def __init__(self, children: Callable[[], Iterable], every_s: float = PROBE_EVERY_S):
        self._children = children  # () -> the current children (each: name, health_url, alive(), started_at)
        self._every_s = every_s
        self._answered: dict[str, float] = {}  # name -> monotonic time of its last answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="up-liveness", daemon=True)

    def start(self) -> Liveness:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def silent_s(self, child, now: float) -> float:
        """Seconds since ``child`` last answered; 0 when it has not answered since its (re)start."""
        answered = self._answered.get(child.name)
        if answered is None or answered < child.started_at:
            return 0.0
        return now - answered

    def _run(self) -> None:
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
            while not self._stop.wait(self._every_s):
                for c in list(self._children()):
                    if c.health_url and c.alive():
                        asked = time.monotonic()
                        try:
                            client.get(c.health_url)
                        except httpx.HTTPError:
                            continue
                        self._answered[c.name] = asked
