"""Faust tables, backed by changelog topics. Keys and values are bytes (msgpack / JSON) so that a
million sessions stay small in memory and in RocksDB."""

from __future__ import annotations

from livemetrics.settings import TABLE_NAMES
from streams.app import app, settings
from streams.changelog import DirectChangelog

# Faust's RocksDB defaults are sized for a big server: per partition database a 2 GiB block cache and
# up to 3 x 64 MiB memtables. One worker holds 1 million sessions in under 1 GiB with these (issue 4).
ROCKSDB_OPTIONS = ({"write_buffer_size": 16 * 2**20, "max_write_buffer_number": 3, "block_cache_size": 64 * 2**20}
                   if settings.store.startswith("rocksdb") else None)

# Session states, keyed by session id, plus one running-sum row per (seller, partition) kept in the
# *same* table so that both are written to one changelog partition in order: after a crash the
# recovered sums always equal the recovered sessions' contributions.
sessions = app.Table(TABLE_NAMES[0], key_type=bytes, value_type=bytes, default=None, options=ROCKSDB_OPTIONS)
# The sessions agent writes the sessions table past Faust's per-message producer (streams/changelog.py).
sessions_changelog = DirectChangelog(sessions, settings)
# Per-seller gauges: for each source partition the latest (generation, seq, sums) it reported.
gauges = app.Table(TABLE_NAMES[1], key_type=bytes, value_type=bytes, default=None, options=ROCKSDB_OPTIONS)
