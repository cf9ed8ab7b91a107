"""Faust tables, backed by changelog topics. Keys and values of the sessions and gauges tables are bytes
(msgpack / JSON) so that a million sessions stay small in memory and in RocksDB."""

from __future__ import annotations

from datetime import timedelta

from livemetrics.settings import TABLE_NAMES, WINDOWED_TABLE_EXPIRES_S
from streams import rates
from streams.app import app, settings
from streams.changelog import DirectChangelog
from streams.faust_internals import WindowTable  # each window registered for expiry once

# Faust's RocksDB defaults are sized for a big server: per partition database a 2 GiB block cache and
# up to 3 x 64 MiB memtables. One worker holds 1 million sessions in under 1 GiB with these (BENCHMARKS.md, streams).
ROCKSDB_OPTIONS = (
    {"write_buffer_size": 16 * 2**20, "max_write_buffer_number": 3, "block_cache_size": 64 * 2**20}
    if settings.store.startswith("rocksdb")
    else None
)
# The per-minute rates table holds ~65 small rows per seller.
SMALL_ROCKSDB_OPTIONS = (
    {"write_buffer_size": 2**20, "max_write_buffer_number": 2, "block_cache_size": 4 * 2**20}
    if settings.store.startswith("rocksdb")
    else None
)

# Session states, keyed by session id, plus one running-sum row per (seller, partition) kept in the
# *same* table so that both are written to one changelog partition in order: after a crash the
# recovered sums always equal the recovered sessions' contributions.
sessions = app.Table(TABLE_NAMES[0], key_type=bytes, value_type=bytes, default=None, options=ROCKSDB_OPTIONS)
# The sessions agent writes the sessions table past Faust's per-message producer (streams/changelog.py).
sessions_changelog = DirectChangelog(sessions, settings)
# Per-seller gauges: for each source partition the latest (generation, seq, sums) it reported.
gauges = app.Table(TABLE_NAMES[1], key_type=bytes, value_type=bytes, default=None, options=ROCKSDB_OPTIONS)


# Per-minute rates: a Faust tumbling windowed table, one window per (seller, minute), value = {metric: count}
# over all the seller's partitions. Keys are (seller, (window start, end)) in JSON, values JSON; only the
# gauges agent writes it, by *setting* each window to the exact total (streams/minute_rates.py).
minute_rates = app.tables.add(
    WindowTable(app, name=TABLE_NAMES[2], default=None, beacon=app.tables.beacon, options=SMALL_ROCKSDB_OPTIONS)
).tumbling(rates.BUCKET_MS // 1000, expires=timedelta(seconds=WINDOWED_TABLE_EXPIRES_S[TABLE_NAMES[2]]))
