"""Is a process's event loop still running? For the processes whose /healthz is served from a thread of its
own (``livemetrics/ops_http.py``: the stream worker): that thread answers while the loop is stuck in a
blocking call or a busy loop, so an answer alone proved nothing.

- A heartbeat task on the loop (``LoopWatch.run``) notes the time every ``beat_s``.
- ``health()``: /healthz answers 503 naming how long the loop has been silent once that passes ``stale_s``
  (``livemetrics up``'s liveness watch takes a 5xx for no answer and kills the child after ``hung_child_s``).
- A watchdog thread (``start_watchdog``) ends the process itself once the loop has been silent for
  ``exit_after_s``: it logs the loop thread's stack (what it was stuck in) and calls ``os._exit`` with
  ``EXIT_LOOP_STUCK``, so that whatever runs it (``up``, compose's ``restart:``, systemd) starts it again.
  A graceful stop would need the stuck loop; a crash is what the pipeline is built for (the worker is
  at-least-once with idempotent tables: nothing acknowledged is lost, docs/operations.md).

Before the first beat (start-up: Kafka, recovery) nothing is judged: start-up has its own waits.

The same watch serves a thread that is not an event loop (the ClickHouse sink's, ``clickhouse/sink.py``): it
calls ``beat()`` on every pass of its loop, and wraps each honest wait on another service (a ClickHouse
insert, a synchronous Kafka commit, the pause before a retry) in ``waiting(on)``: while inside, the thread
counts as alive and waiting (/healthz says on what and for how long), up to ``wait_limit_s``, after which
its silence counts again. So a sink waiting out an outage is told apart from one blocked for ever elsewhere.
A watched thread that hands work to helper threads (the sink's thread: its prepare and insert threads) says
so with ``hand_over(helper, future)``, the helper's own watch: until the future is done the watched thread is
no more alive than the helper, which beats when it starts a step and declares its own waits (a helper
inside a ClickHouse call is waiting on ClickHouse; a helper stuck in its own code is stuck, and /healthz and
the exit's stack name the helper). A thread that blocks until a helper's work is done wraps that wait in
``waiting_for(helper)``: meanwhile it is exactly as alive as the helper. Before, the sink declared its wait
for the insert thread a wait on ClickHouse, so an insert thread stuck in Python counted as alive for
``wait_limit_s``, and a stuck prepare or insert thread nobody was blocked on yet was not seen at all.
The gateway and the API serve /healthz from their event loop itself, so a stuck loop does not answer there
and ``up`` restarts it; they run the watchdog too (``watching``), because nothing else would: compose
restarts only on exit, and a gateway's worker process (``gateway_workers`` > 1) shares its port with
siblings that answer the probe for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager

log = logging.getLogger("livemetrics.loop_watch")

EXIT_LOOP_STUCK = 70  # EX_SOFTWARE; `up` names it in its restart message (operations/supervise.py)
BEAT_S = 1.0
WAIT_LIMIT_S = 600.0  # a declared wait (``waiting``) longer than this counts as silence: clients' timeouts are shorter
EXIT_GRACE_S = 5.0  # the stack is logged within this, or the process exits without it (a blocked log handler)


class LoopWatch:
    """The heartbeat of one event loop, what /healthz says of it, and the watchdog that ends a stuck process."""

    def __init__(
        self,
        service: str,
        stale_s: float,
        exit_after_s: float,
        beat_s: float = BEAT_S,
        clock: Callable[[], float] = time.monotonic,
        exit: Callable[[int], object] = os._exit,
        what: str = "the event loop",
        wait_limit_s: float = WAIT_LIMIT_S,
    ):
        self.service, self.stale_s, self.exit_after_s, self.beat_s = service, stale_s, exit_after_s, beat_s
        self._clock, self._exit = clock, exit
        self.what, self.wait_limit_s = what, wait_limit_s
        self._last: float | None = None  # clock() of the last beat; None before the first
        self._waiting: tuple[str, float] | None = None  # (on what, since when) while in ``waiting``
        self._helper: tuple[LoopWatch, float] | None = None  # (whose work, since when) while in ``waiting_for``
        self._handed: dict[object, tuple[LoopWatch, float]] = {}  # work handed over, not done: (helper, since)
        self._loop_thread: int | None = None  # ident of the thread the loop runs on
        self._stop = threading.Event()

    def beat(self) -> None:
        """Called on the loop's thread."""
        self._loop_thread = threading.get_ident()
        self._last = self._clock()

    async def run(self) -> None:
        """The heartbeat: a task on the loop that is watched, for the loop's life."""
        while True:
            self.beat()
            await asyncio.sleep(self.beat_s)

    @contextmanager
    def waiting(self, on: str) -> Iterator[None]:
        """(On the watched thread.) An honest wait on ``on`` (another service): alive meanwhile, for up to
        ``wait_limit_s``; a beat when it ends. Nested waits keep the outer one's start."""
        outer = self._waiting
        if outer is None:
            self.beat()
            self._waiting = (on, self._clock())
        try:
            yield
        finally:
            self._waiting = outer
            self.beat()

    @contextmanager
    def waiting_for(self, helper: LoopWatch) -> Iterator[None]:
        """(On the watched thread.) Blocked until work handed to another thread is done, that thread watched by
        ``helper`` (it beats when it starts a step and declares its own waits): meanwhile this thread is as
        alive as the helper has been since the wait began, and what /healthz and the exit say is the helper's
        (its declared wait, its silence, its ``what`` and stack). A beat when it ends."""
        outer = self._helper
        self.beat()
        self._helper = (helper, self._clock())
        try:
            yield
        finally:
            self._helper = outer
            self.beat()

    def hand_over(self, helper: LoopWatch, work: Future) -> None:
        """(On the watched thread.) ``work`` was handed to the thread ``helper`` watches: until it is done, this
        thread counts as no more alive than the helper has been since now."""
        self._handed[work] = (helper, self._clock())
        work.add_done_callback(self._work_done)  # at once when done already

    def _work_done(self, work: Future) -> None:
        self._handed.pop(work, None)

    def waiting_on(self) -> tuple[str, float] | None:
        """(on what, for how many seconds) while the thread (or the helper it waits for) is in ``waiting``,
        else None."""
        helper = self._helper
        if helper is not None and self._waiting is None:
            return helper[0].waiting_on()
        waiting = self._waiting
        return None if waiting is None else (waiting[0], max(0.0, self._clock() - waiting[1]))

    def silent_s(self) -> float | None:
        """Seconds since the loop last beat; None before its first beat. In ``waiting``: 0 for up to
        ``wait_limit_s``, then the seconds beyond it. In ``waiting_for``: the helper's, counted from the
        start of the wait at the earliest (a helper idle until then has not been silent on this work). With
        work handed over and not done: the most silent of this and those helpers (each counted from the
        hand-over at the earliest)."""
        return self._judge(None)[0]

    def _judge(self, not_before: float | None) -> tuple[float | None, LoopWatch]:
        """(silence, the watch whose thread it is: this one or a helper's)."""
        last = self._last if not_before is None or (self._last is not None and self._last > not_before) else not_before
        if last is None:
            return None, self
        waiting, helper = self._waiting, self._helper
        if waiting is not None:
            judged: tuple[float | None, LoopWatch] = (max(0.0, self._clock() - waiting[1] - self.wait_limit_s), self)
        elif helper is not None:
            judged = helper[0]._judge(helper[1])
        else:
            judged = (max(0.0, self._clock() - last), self)
        for other, since in tuple(self._handed.values()):
            theirs = other._judge(since)
            if theirs[0] is not None and (judged[0] is None or theirs[0] > judged[0]):
                judged = theirs
        return judged

    def _stuck_one(self) -> LoopWatch:
        """The watch whose thread the silence is: this one, or a helper's."""
        return self._judge(None)[1]

    def health(self) -> tuple[bool, dict[str, object]]:
        """(alive?, details) for /healthz: not alive once the loop has been silent for more than ``stale_s``."""
        silent, stuck = self._judge(None)
        if silent is None or self.stale_s <= 0 or silent <= self.stale_s:
            waiting = self.waiting_on()
            if waiting is None:
                return True, {}
            return True, {"waiting_on": waiting[0], "waiting_s": round(waiting[1], 1)}
        return False, {
            "status": "stuck",
            "loop_silent_s": round(silent, 1),
            "detail": f"{stuck.what} has not run for {silent:.0f} s",
        }

    def loop_stack(self) -> str:
        """The stuck thread's current stack (the loop's, or a helper's), innermost call last."""
        stuck = self._stuck_one()
        frame = sys._current_frames().get(stuck._loop_thread) if stuck._loop_thread is not None else None
        if frame is None:
            return "(the loop thread is gone)"
        return "".join(traceback.format_stack(frame))

    def start_watchdog(self) -> threading.Thread | None:
        """The thread that ends the process once its loop has been silent for ``exit_after_s`` (0: none)."""
        if self.exit_after_s <= 0:
            return None
        thread = threading.Thread(target=self._watch, name=f"{self.service}-loop-watchdog", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.beat_s):
            silent = self.silent_s()
            if silent is not None and silent > self.exit_after_s:
                self._bail(silent)
                return

    def _bail(self, silent: float) -> None:
        # The stuck loop may hold a lock of the logging machinery (a write to a full pipe): exit anyway.
        backstop = threading.Timer(EXIT_GRACE_S, self._exit, (EXIT_LOOP_STUCK,))
        backstop.daemon = True
        backstop.start()
        log.critical(
            "%s: %s has not run for %.0f s (limit %g s): exiting with code %d to be restarted; "
            "the loop thread is in:\n%s",
            self.service,
            self._stuck_one().what,
            silent,
            self.exit_after_s,
            EXIT_LOOP_STUCK,
            self.loop_stack(),
            extra={"loop_silent_s": round(silent, 1), "exit_code": EXIT_LOOP_STUCK},
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(EXIT_LOOP_STUCK)
        backstop.cancel()  # reached only when ``exit`` does not end the process (tests)


@asynccontextmanager
async def watching(service: str, stale_s: float, exit_after_s: float) -> AsyncIterator[LoopWatch]:
    """Beat on the running loop and run the watchdog for the block's life (started at the end of start-up)."""
    watch = LoopWatch(service, stale_s, exit_after_s)
    beats = asyncio.ensure_future(watch.run())
    watch.start_watchdog()
    try:
        yield watch
    finally:
        watch.stop()
        beats.cancel()
