"""Seller gauges -> the snapshot of SPEC §6 (pure)."""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any

from livemetrics.contract import PAGE_TYPES
from streams.caps import LIVE_PREFIXES
from streams.state import Windows

_FLAT = [p for p in PAGE_TYPES if p not in ("category", "offer")]


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
        "folded": {dim: totals.get(f"folded:{dim}", 0) for dim in LIVE_PREFIXES},
        "windows": {
            "live": f"last {w.live_ms // 1000} s",
            "active_sessions": f"last {w.timeout_ms // 1000} s",
            # The field names keep SPEC §6's "30m"; the labels say the configured window.
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
