"""Per-minute event rates (pure): tumbling one-minute windows on ``received_at``, the last hour.

Counts live in each (seller, partition) sums row as ``{minute_start_ms: {metric: n}}`` next to the
highest Kafka offset already counted per source topic, written in one table update, so a replayed
event (offset at or below the mark) is never counted twice. See docs/live-semantics.md."""

from __future__ import annotations

from typing import Any

from livemetrics.contract import Event
from streams.caps import Caps, cap_methods, method_slot

BUCKET_MS = 60_000
BUCKETS = 60
SERIES = ("page_views", "checkouts", "payments_started", "payments_succeeded", "payments_failed")
_BY_TYPE = {
    "page_view": "page_views",
    "checkout_started": "checkouts",
    "payment_started": "payments_started",
    "payment_succeeded": "payments_succeeded",
    "payment_failed": "payments_failed",
}
_METHOD_STEP = {"payment_started": "started", "payment_succeeded": "succeeded", "payment_failed": "failed"}


def metrics_of(ev: Event) -> list[str]:
    """The counters one event adds 1 to (empty for heartbeats, bots and backfill)."""
    name = _BY_TYPE.get(ev.type)
    if name is None or ev.is_bot or ev.backfill:
        return []
    out = [name]
    step = _METHOD_STEP.get(ev.type)
    if step and ev.payment is not None:
        out.append(f"m:{ev.payment.method}:{step}")
    return out


def first_bucket(now: int) -> int:
    return (now // BUCKET_MS - (BUCKETS - 1)) * BUCKET_MS


def count(buckets: dict[str, dict[str, int]], ev: Event, now: int, max_methods: int = Caps().payment_method) -> None:
    """Add one event into ``buckets`` (mutated); events older than the hour shown are not kept. A minute
    keeps at most ``max_methods`` payment methods (``streams/caps.py``), the rest count under ``~other``."""
    start = ev.received_at // BUCKET_MS * BUCKET_MS
    if start < (now // BUCKET_MS - (BUCKETS - 1)) * BUCKET_MS:  # first_bucket(now), inline (every event)
        return
    minute = str(start)
    b = buckets.get(minute)
    if b is None:
        b = buckets[minute] = {}
    if ev.type == "page_view" and not ev.is_bot and not ev.backfill:  # most events: metrics_of's one name
        b["page_views"] = b.get("page_views", 0) + 1
        return
    for m in metrics_of(ev):
        if m.startswith("m:"):
            _, method, step = m.split(":", 2)
            m = f"m:{method_slot(b, method, max_methods)}:{step}"
        b[m] = b.get(m, 0) + 1


def prune(buckets: dict[str, dict[str, int]], now: int) -> dict[str, dict[str, int]]:
    lo = first_bucket(now)
    return {k: v for k, v in buckets.items() if int(k) >= lo}


def merge(into: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    for k, counts in more.items():
        b = into.setdefault(k, {})
        for m, n in counts.items():
            b[m] = b.get(m, 0) + n


def series(buckets: dict[str, dict[str, int]], now: int, max_methods: int = Caps().payment_method) -> dict[str, Any]:
    """The ``rates_per_minute`` object of the snapshot (shape in docs/live-semantics.md); ``by_method``
    keeps the hour's first ``max_methods`` methods by name, the rest under ``~other``."""
    from livemetrics.snapshot import iso

    lo = first_bucket(now)
    out: dict[str, list[int]] = {s: [0] * BUCKETS for s in SERIES}
    methods: dict[str, dict[str, list[int]]] = {}
    for k, counts in buckets.items():
        i = (int(k) - lo) // BUCKET_MS
        if not 0 <= i < BUCKETS:
            continue
        for m, n in counts.items():
            if m.startswith("m:"):
                _, method, step = m.split(":", 2)
                per = methods.setdefault(
                    method, {"started": [0] * BUCKETS, "succeeded": [0] * BUCKETS, "failed": [0] * BUCKETS}
                )
                per[step][i] += n
            elif m in out:
                out[m][i] += n
    return {
        "bucket_s": BUCKET_MS // 1000,
        "buckets": BUCKETS,
        "start_ms": lo,
        "start": iso(lo),
        "series": out,
        "by_method": cap_methods(methods, max_methods),
    }
