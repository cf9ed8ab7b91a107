"""Overload protection: when live processing is behind, the sellers sending far more than their share are
refused first (429), so that one seller's flood cannot make every other seller's live numbers lag.

Pure policy, no Kafka and no HTTP: ``Shedder`` is fed lag readings (``Reading``, from
``producers/gateway/worker_lag.py``) and asked once per request whether its seller may go on.

- Behind: the worker group's lag (raw events between its committed offsets and the topics' ends) reached
  ``high`` while growing (``Reading.growth_per_s`` > 0: between the workers' recent commits the
  events arrived faster than the workers folded them); it stays behind until the lag is back at or under
  ``low`` (hysteresis: no flapping around one mark), shrinking or not. A lag over ``high`` that is
  shrinking is a backlog draining (after a worker, broker or deploy outage): nobody's sending outruns the
  workers, and refusing the largest seller would only lose its time, so it does not start refusals. A
  reading older than ``stale_s`` (the broker did not answer) ends being behind: refusing on old news would
  refuse for nothing.
- Stalled: the lag's committed offsets have not moved for ``stalled_s``. No worker is folding (stopped,
  dead, in a long recovery): the backlog waits in Kafka and drains when a worker is back, and refusing
  anyone would only lose the sellers' time, so nothing is refused for it, and it ends being behind (once the
  workers are back, refusals start again only if the lag grows).
- Far over its share: every request's events are counted per seller in windows of ``window_s`` (one dict
  update per request); from the last complete window, a seller is heavy when it sent at least
  ``MIN_EVENTS_PER_S`` events/s and ``FOLD_FLOOR`` of the workers' fold rate per gateway process
  (``floor_events``), and more than ``share`` times the mean of the other sellers. A seller at or
  under the window's mean is never heavy (share >= 1). A seller that is the only one sending is heavy too:
  it is the whole overload. Refused events count as sent, so a flood stays heavy while it goes on (counting
  only accepted events would let it back in every other window) and stops being heavy once the sender backs
  off.
- Refused: while behind and not stalled, a heavy seller's requests get 429 with Retry-After (the time the
  lag needs to fall to ``low`` at the worker's measured rate, 1-30 s); everyone else goes on as before.

Every gateway process decides for itself, from its own requests (connections are spread over the
processes, so each sees about the same mix) and from the same readings.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

log = logging.getLogger("livemetrics.gateway")

MIN_EVENTS_PER_S = 50.0  # a seller sending less than this is never refused as heavy: it cannot be the cause
FOLD_FLOOR = 0.1  # nor one sending less than this part of the workers' fold rate per gateway process
MAX_RETRY_AFTER_S = 30
TICK_S = 0.25  # how often a request looks at the latest reading (and whether the window is over)


class Reading(NamedTuple):
    """One look at the worker group's lag."""

    at: float  # time.monotonic() of the reading (the same clock in every process of the machine)
    lag: int  # raw events committed by no worker yet (partitions the group has committed)
    progressed_at: float  # the last reading whose committed offsets had moved
    drain_per_s: float  # committed events per second lately (what the workers fold); 0: unknown
    growth_per_s: float = 0.0  # the lag's change per second between commits lately (worker_lag); 0: unknown


def heavy_sellers(counts: Mapping[str, int], share: float, min_events: float) -> frozenset[str]:
    """The sellers of one window's ``counts`` sending far over their share: at least ``min_events`` and
    more than ``share`` times the other sellers' mean; the only seller sending is heavy (if ``min_events``)."""
    k = len(counts)
    total = sum(counts.values())
    if k == 1:
        return frozenset(s for s, c in counts.items() if c >= min_events)
    return frozenset(s for s, c in counts.items() if c >= min_events and c * (k - 1) > share * (total - c))


class Shedder:
    """The per-process policy. ``admit`` is the per-request part: a dict update and a set lookup."""

    def __init__(
        self,
        source: Callable[[], Reading | None],
        *,
        high: int,
        low: int,
        share: float,
        window_s: float,
        stalled_s: float,
        stale_s: float,
        min_events_per_s: float = MIN_EVENTS_PER_S,
        processes: int = 1,
    ):
        self.source = source
        self.enabled = high > 0
        self.high, self.low = high, min(low, high)
        self.share = share
        self.window_s = window_s
        self.stalled_s = stalled_s
        self.stale_s = stale_s
        self.min_events_per_s = min_events_per_s
        self.processes = max(1, processes)  # the gateway's processes sharing its traffic (gateway_workers)
        self.min_events = min_events_per_s * window_s  # this window's floor (``floor_events``)
        self._counts: dict[str, int] = {}  # this window's
        self.last: dict[str, int] = {}  # the last complete window's
        self.last_total = 0
        self.heavy: frozenset[str] = frozenset()
        self._window_end = -math.inf
        self._next_tick = -math.inf
        self.reading: Reading | None = None
        self.behind = False
        self.stalled = False
        self.shedding = False

    def admit(self, seller: str, n: int, now: float) -> int:
        """Count ``n`` events of ``seller``; 0 when they may go on, else the seconds to wait (429)."""
        if not self.enabled:
            return 0
        if now >= self._next_tick:
            self.tick(now)
        counts = self._counts
        counts[seller] = counts.get(seller, 0) + n
        if self.shedding and seller in self.heavy:
            return self.retry_after()
        return 0

    def refusing(self, seller: str) -> bool:
        """Whether ``seller``'s requests are being refused (as of the last tick)."""
        return self.shedding and seller in self.heavy

    def tick(self, now: float) -> None:
        """Take the latest reading and, when the window is over, the sellers' shares."""
        self._next_tick = now + TICK_S
        self.observe(self.source(), now)
        if now >= self._window_end:
            # the window that just ended, unless no request came for a whole window after it (then none)
            self.last = self._counts if now < self._window_end + self.window_s else {}
            self.last_total = sum(self.last.values())
            self.min_events = self.floor_events()
            self.heavy = heavy_sellers(self.last, self.share, self.min_events)
            self._counts = {}
            self._window_end = now + self.window_s

    def floor_events(self) -> float:
        """The fewest events in a window for a seller to be refused at all: ``min_events_per_s``, and
        ``FOLD_FLOOR`` of what the workers fold, over this gateway's processes. Shares are counted per
        process, and a seller whose one connection lands on a process that serves only small sellers looks
        large there: under this part of the workers' rate it cannot be what holds them back."""
        r = self.reading
        drain = r.drain_per_s if r is not None else 0.0
        return max(self.min_events_per_s, FOLD_FLOOR * drain / self.processes) * self.window_s

    def observe(self, reading: Reading | None, now: float) -> None:
        if reading is not None and reading != self.reading:
            self.reading = reading
            self.stalled = reading.lag > 0 and reading.at - reading.progressed_at >= self.stalled_s
            # hysteresis: behind from ``high`` up while growing, until back at or under ``low``; a stop of the
            # workers ends it (its backlog is not the arrivals outrunning them)
            if self.behind:
                self.behind = reading.lag > self.low and not self.stalled
            else:
                self.behind = reading.lag >= self.high and reading.growth_per_s > 0 and not self.stalled
        fresh = self.reading is not None and now - self.reading.at <= self.stale_s
        if not fresh:
            self.behind = False
        shedding = self.behind and not self.stalled and fresh
        if shedding != self.shedding:
            self._said(shedding, fresh)
        self.shedding = shedding

    def _said(self, shedding: bool, fresh: bool) -> None:
        """One log line per change: when refusals start and stop, and why they stop."""
        lag = self.reading.lag if self.reading is not None else 0
        if shedding:
            heavy = ", ".join(sorted(self.heavy)[:5]) or "none yet"
            growth = self.reading.growth_per_s if self.reading is not None else 0.0
            log.warning(
                "overload protection: live processing is behind by %d events (high mark %d) and falling further "
                "behind (+%.0f events/s): refusing the sellers far over their share (now: %s)",
                lag,
                self.high,
                growth,
                heavy,
            )
        elif not fresh:
            log.warning("overload protection: no fresh reading of the worker group's lag: refusing no one")
        elif self.stalled:
            log.warning(
                "overload protection: the worker group's offsets have not moved for %.0f s (lag %d): a stopped "
                "worker, not an overload; refusing no one",
                self.stalled_s,
                lag,
            )
        else:
            log.warning(
                "overload protection: the lag is back at %d events (low mark %d): refusing no one", lag, self.low
            )

    def retry_after(self) -> int:
        """Whole seconds until the lag is likely back under ``low``, at the workers' measured rate."""
        r = self.reading
        if r is None or r.drain_per_s <= 0:
            return max(1, min(MAX_RETRY_AFTER_S, math.ceil(self.window_s)))
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil((r.lag - self.low) / r.drain_per_s)))

    def why(self, seller: str, wait: int) -> str:
        """The refusal's words (only built for a refusal)."""
        r = self.reading
        lag = r.lag if r is not None else 0
        seconds = f" (~{lag / r.drain_per_s:.0f} s of the workers' folding)" if r and r.drain_per_s > 0 else ""
        sent = self.last.get(seller, 0)
        if len(self.last) == 1:
            whose = "the only seller sending"
        else:
            whose = f"over {self.share:g} x the other sellers' mean"
        return (
            f"live processing is behind by {lag} events{seconds}; seller {seller} sent {sent} of the last "
            f"{self.window_s:g} s window's {self.last_total} events at this gateway process ({whose}), and the "
            f"heaviest senders are refused first until the lag is back under {self.low}; nothing of this request "
            f"was accepted, retry in {wait} s"
        )
