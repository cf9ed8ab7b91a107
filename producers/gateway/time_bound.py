"""How far an event's `ts` (the sender's clock) may be from the gateway's `received_at` (docs/ingest.md,
"Time and order").

A browser key is public, so `ts` is anything a page wants it to be; bounding it keeps reports (by `ts`)
and everything sized by distinct times (partitions, hours) to what a real storefront can send: live events
within ``max_clock_skew_s`` of the gateway's clock either way, backfill (server keys) up to
``event_ttl_days`` into the past (older rows would only be expired again) and ``max_clock_skew_s`` ahead.
"""

from __future__ import annotations

from datetime import UTC, datetime

from livemetrics.settings import Settings

DAY_MS = 86_400_000
# What ``epoch_ms`` lets through as is (2000-01-01 .. 3000-01-01): the bounds never reach past it, so an
# integer outside it still gets ``epoch_ms``'s own error.
EPOCH_MS_MIN, EPOCH_MS_MAX = 946_684_800_000, 32_503_680_000_000


def bounds(received_at: int, backfill: bool, settings: Settings) -> tuple[int, int]:
    """The accepted `ts` range, both ends included, for a request received at ``received_at`` (epoch ms)."""
    skew = settings.max_clock_skew_s * 1000
    past = settings.event_ttl_days * DAY_MS if backfill else skew
    return max(received_at - past, EPOCH_MS_MIN), min(received_at + skew, EPOCH_MS_MAX)


def duration(ms: int) -> str:
    """``90_061_001`` -> ``"1 d 1 h 1 min 1.001 s"`` (zero parts left out)."""
    d, rest = divmod(ms, DAY_MS)
    h, rest = divmod(rest, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    parts = [
        f"{d} d" if d else "",
        f"{h} h" if h else "",
        f"{m} min" if m else "",
        (f"{s}.{milli:03d} s" if milli else f"{s} s") if s or milli else "",
    ]
    return " ".join(p for p in parts if p) or "0 s"


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):  # a datetime `ts` near year 1 or 9999
        return f"{ms} ms"


def out_of_bounds(ts: int, received_at: int, backfill: bool, settings: Settings) -> str:
    """The per-event error for a `ts` outside ``bounds``: how far off it is, the bound and its setting."""
    skew = settings.max_clock_skew_s
    if ts > received_at:
        return (
            f"`ts` {_iso(ts)} is {duration(ts - received_at)} ahead of the gateway's clock ({_iso(received_at)}); "
            f"at most {duration(skew * 1000)} ahead is accepted (max_clock_skew_s={skew}) - at `$.ts`"
        )
    if backfill:
        ttl = settings.event_ttl_days
        return (
            f"`ts` {_iso(ts)} is {duration(received_at - ts)} before the gateway's clock ({_iso(received_at)}); "
            f"backfill is accepted up to {ttl} d back (event_ttl_days={ttl}) - at `$.ts`"
        )
    return (
        f"`ts` {_iso(ts)} is {duration(received_at - ts)} before the gateway's clock ({_iso(received_at)}); "
        f"live events are accepted up to {duration(skew * 1000)} back (max_clock_skew_s={skew}; older history "
        f"goes in as backfill with a server key) - at `$.ts`"
    )
