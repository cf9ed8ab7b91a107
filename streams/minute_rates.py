"""Per-minute rates in a Faust tumbling windowed table (``streams.tables.minute_rates``, issue 4): one
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
restarted worker would keep the recovered windows forever). What this relies on in Faust 0.15
(``faust/tables/base.py``, ``faust/stores``): ``Collection._maybe_set_key_ttl(key, partition)`` and
``_partition_timestamp_keys``; the RocksDB store's ``_dbs`` / ``_visible_keys`` and the memory store's
``_key_partition``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from streams import rates
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


def _recovered_keys(store: Any) -> Iterator[tuple[int, Any]]:
    """(partition, key) of every window in the local store of the partitions this worker holds."""
    dbs = getattr(store, "_dbs", None)
    if dbs is not None:  # RocksDB: one database per partition, keys as serialized (JSON lists)
        for partition, db in list(dbs.items()):
            for raw in store._visible_keys(db):
                yield partition, _table._to_key(json.loads(raw))
    else:  # memory store: the partition of every key recovered from the changelog
        yield from ((p, key) for key, p in list(store._key_partition.items()))


def register_recovered() -> int:
    """Register recovered windows for Faust's expiry (those set since are registered already); the
    number registered."""
    registered = _table._partition_timestamp_keys
    n = 0
    for partition, key in _recovered_keys(_table.data):
        if key in registered.get((partition, key[1][1]), ()):
            continue
        _table._maybe_set_key_ttl(key, partition)
        n += 1
    return n


@minute_rates.on_recover
async def _register_recovered_windows() -> None:
    register_recovered()
