"""The live snapshot's shape (docs/live-semantics.md): seller gauges -> the snapshot the worker publishes
on ``live-metrics`` and the API serves. Pure; in the core because both build it (the API an empty one for
a seller it has not seen yet)."""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any, Protocol

from livemetrics.contract import PAGE_TYPES

_FLAT = [p for p in PAGE_TYPES if p not in ("category", "offer")]
# The dimensions whose distinct values are capped per seller (streams/caps.py folds the rest into "~other").
FOLDED_DIMENSIONS = ("category", "offer")
# A sums row gauge: 1 while a (seller, partition) holds its share of live_sessions_per_seller_max
# (streams/caps.py::HeldSessions); summed over partitions, > 0 is the snapshot's ``sessions_capped``.
CAPPED_SESSIONS = "capped:sessions"


class Windows(Protocol):
    """The session windows, in ms (``streams.state.Windows``)."""

    @property
    def live_ms(self) -> int: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def recent_ms(self) -> int: ...


class SettingsWindows:
    """The windows as settings give them (seconds), for a snapshot built outside the worker."""

    def __init__(self, settings: Any) -> None:
        self.live_ms = settings.live_window_s * 1000
        self.timeout_ms = settings.session_timeout_s * 1000
        self.recent_ms = settings.recent_window_s * 1000


def empty_snapshot(seller_id: str, settings: Any, recovering: bool) -> dict[str, Any]:
    """All zero: what the API serves for a seller no snapshot has been seen for."""
    return build_snapshot(seller_id, {}, SettingsWindows(settings), recovering=recovering)


def build_snapshot(
    seller_id: str,
    totals: dict[str, int],
    w: Windows,
    recovering: bool = False,
    as_of_ms: int | None = None,
    rates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    live: dict[str, Any] = {name: 0 for name in _FLAT}
    live["category"] = {}
    live["offer"] = {}
    for key, n in totals.items():
        if not key.startswith("live:"):
            continue
        loc = key[5:]
        if loc.startswith("category:"):
            live["category"][loc[9:]] = n
        elif loc.startswith("offer:"):
            live["offer"][loc[6:]] = n
        else:
            live[loc] = live.get(loc, 0) + n
    as_of = as_of_ms if as_of_ms is not None else int(time.time() * 1000)
    snap = {
        "seller_id": seller_id,
        "as_of": iso(as_of),
        "as_of_ms": as_of,
        "window_s": w.live_ms // 1000,
        "session_timeout_s": w.timeout_ms // 1000,
        "recovering": recovering,
        "live": live,
        "active_sessions": totals.get("active", 0),
        "purchased_30m": totals.get("purchased", 0),
        "payment_failures_30m": totals.get("failures", 0),
        "abandoned_30m": {
            "checkout": totals.get("abandoned:checkout", 0),
            "payment": totals.get("abandoned:payment", 0),
        },
        # Distinct live categories / offers counted under "~other" past the seller's caps (streams/caps.py).
        "folded": {dim: totals.get(f"folded:{dim}", 0) for dim in FOLDED_DIMENSIONS},
        # True while the seller is at its live sessions cap (on some partition): its new sessions there are
        # not counted live, so the counts above are low by them; the sessions already counted stay exact.
        "sessions_capped": totals.get(CAPPED_SESSIONS, 0) > 0,
        "windows": {
            "live": f"last {w.live_ms // 1000} s",
            "active_sessions": f"last {w.timeout_ms // 1000} s",
            # The field names keep their first version's "30m"; the labels say the configured window.
            "purchased_30m": f"last {w.recent_ms // 1000} s",
            "payment_failures_30m": f"last {w.recent_ms // 1000} s",
            "abandoned_30m": f"sessions that ended in the last {w.recent_ms // 1000} s",
        },
    }
    if rates is not None:
        snap["rates_per_minute"] = rates
        snap["windows"]["rates_per_minute"] = "60 one-minute buckets, the last one is the current (partial) minute"
    return snap


def iso(ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
