"""Per-minute rates in a Faust tumbling windowed table (``streams.tables.minute_rates``): one
window per (seller, minute), its value ``{metric: count}`` over all the seller's partitions, the
source of the snapshots' ``rates_per_minute``.

Exact under at-least-once. The counts themselves are kept by the sessions agent in its offset-guarded
sums rows (``streams/rates.py``: a replayed event is never counted twice) and reach the gauges agent
with every report. The gauges agent *sets* each window to the total over the seller's partitions'
latest rows (``record``), never adds to it: a replayed or re-sent report rewrites the same value. A
window is written only where its stored value differs, inside the gauges agent's stream, so Faust
puts it in the changelog partition of the seller's ``live-deltas`` partition (the same owner as the
gauges row).

Expiry. Windows expire ``expires`` after their end through Faust's own table cleanup
(``table_cleanup_interval``); the changelog topic drops them by retention
(``livemetrics/topics.py``). Faust registers a window for expiry only when it is set, not when it is
recovered from the changelog, so ``register_recovered`` does that after every recovery (else a
restarted worker would keep the recovered windows forever). The Faust privates this needs (listing a
store's keys, the expiry heap) are reached through ``streams/faust_internals.py``."""

from __future__ import annotations

from streams import faust_internals, rates
from streams.tables import minute_rates

_table = minute_rates.table  # the windowed Faust table under the wrapper: keys (seller, (start, end))


def window_of(minute_ms: int) -> tuple[float, float]:
    """The tumbling window (Faust's range, in seconds) of the minute starting at ``minute_ms``."""
    return _table.window.current(minute_ms / 1000)


def stored(seller: str, minute_ms: int) -> dict[str, int] | None:
    """The window's value as stored, None if there is none."""
    return _table.data.get((seller, window_of(minute_ms)))


def record(seller: str, counts_by_minute: dict[int, dict[str, int]]) -> int:
    """Set each minute's window of ``seller`` to its exact counts where the stored value differs; the
    number of windows written. Must run in the gauges agent's stream (the event picks the partition)."""
    windows = minute_rates[seller]
    written = 0
    for minute, counts in counts_by_minute.items():
        if (stored(seller, minute) or {}) != counts:
            windows[window_of(minute)] = counts
            written += 1
    return written


def last_hour(seller: str, now: int) -> dict[str, dict[str, int]]:
    """The seller's windows of the hour shown at ``now`` as ``{minute_start_ms: counts}`` (the input of
    ``rates.series``)."""
    lo = rates.first_bucket(now)
    out: dict[str, dict[str, int]] = {}
    for i in range(rates.BUCKETS):
        minute = lo + i * rates.BUCKET_MS
        counts = stored(seller, minute)
        if counts:
            out[str(minute)] = counts
    return out


def register_recovered() -> int:
    """Register recovered windows for Faust's expiry (those set since are registered already); the
    number registered."""
    n = 0
    for partition, key in faust_internals.stored_keys_by_partition(_table):
        if not faust_internals.registered_for_expiry(_table, partition, key):
            faust_internals.register_for_expiry(_table, key, partition)
            n += 1
    return n


@minute_rates.on_recover
async def _register_recovered_windows() -> None:
    register_recovered()
