"""Faust tables, backed by changelog topics. Keys and values of the sessions and gauges tables are bytes
(msgpack / JSON) so that a million sessions stay small in memory and in RocksDB."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from livemetrics.settings import TABLE_NAMES, WINDOWED_TABLE_EXPIRES_S
from streams import faust_internals, rates
from streams.app import app, settings
from streams.changelog import DirectChangelog
from streams.faust_internals import WindowTable  # each window registered for expiry once

# Faust's RocksDB defaults are sized for a big server: per partition database a 2 GiB block cache and
# up to 3 x 64 MiB memtables. One worker holds 1 million sessions in under 1 GiB with these (BENCHMARKS.md, streams).
# Bloom filters of 10 bits a key (Faust's default: 3, ~15 % false positives per file) in the files, and
# one over the whole key in each memtable: most events of a session are read from the state cache
# (streams/state_cache.py), so what the store is asked is mostly a new session's key, which it does not
# hold; without the filters such a miss searched every memtable and most files, ~6-7 us against ~2 us
# (BENCHMARKS.md, the worker's CPU per event, eleventh session). Filters never hide a key that is there.
ROCKSDB_OPTIONS = (
    {
        "write_buffer_size": 16 * 2**20,
        "max_write_buffer_number": 3,
        "block_cache_size": 64 * 2**20,
        "bloom_filter_size": 10,
    }
    if settings.store.startswith("rocksdb")
    else None
)
MEMTABLE_BLOOM_RATIO = 0.1  # of write_buffer_size: ~1.6 MB a memtable
# The per-minute rates table holds ~65 small rows per seller.
SMALL_ROCKSDB_OPTIONS = (
    {"write_buffer_size": 2**20, "max_write_buffer_number": 2, "block_cache_size": 4 * 2**20}
    if settings.store.startswith("rocksdb")
    else None
)


# RocksDB's flushes and compactions of the sessions store write at most this many bytes a second per
# partition database (its rate limiter; the refill period and fairness are RocksDB's defaults). The
# store takes one write per event, so at 15,000 events/s each partition's 16 MiB memtable fills in ~10 s,
# and the three partitions fill together: their flushes (~3.6 MB written each) and, every fourth, the
# L0 compaction (~9 MB) came in one burst of ~0.9 CPU s within ~1 s on the worker's background threads,
# which share the worker's core share with its main thread (each process is its own autogroup): the
# stack's p99 stepped from ~0.3 to 1-2 s there and did not recover (BENCHMARKS.md, the sessions store's
# background bursts, twelfth session). Limited, the same work is spread over seconds (at 4 MiB/s a flush
# ~1 s, that compaction ~2-3 s); the bytes and the CPU are the same. Written at 15k/s: ~0.4 MB/s of
# flushes plus compactions per partition. 8 MiB/s, not 4: a worker catching up (`bench streams`, 1 M new
# sessions) did 0.85 of the CPU per event and ~1.17x the events/s of 4 MiB/s (6 alternated pairs, lower
# CPU in all 6: at 4 MiB/s compactions lag and leave more L0 files for every miss to check), and the
# burst stays spread (a scratch loop beside three such stores on one core: at most 13-16 ms late against
# 10 at 4 MiB/s and 142-158 unlimited; BENCHMARKS.md, thirteenth session). Past the limit, L0 files
# wait for their compaction (RocksDB slows writes only at 20 of them, never loses them). Unmeasured: a
# store grown over hours compacts into deeper levels, whose extra writes this limit paces too.
BACKGROUND_BYTES_PER_S = 8 * 2**20
RATE_LIMITER_REFILL_US = 100_000
RATE_LIMITER_FAIRNESS = 10


def memtable_bloom(options: Any) -> None:
    """A whole-key Bloom filter in each memtable of a rocksdict ``Options`` (RocksDB's
    ``memtable_prefix_bloom_size_ratio`` with ``memtable_whole_key_filtering``)."""
    options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
    options.set_memtable_whole_key_filtering(True)


def sessions_store_options(options: Any) -> None:
    """The sessions store's own settings on top of Faust's (``faust_internals.tune_rocksdb_options``): the
    memtable filters and the background rate limiter."""
    memtable_bloom(options)
    options.set_ratelimiter(BACKGROUND_BYTES_PER_S, RATE_LIMITER_REFILL_US, RATE_LIMITER_FAIRNESS)


# Session states, keyed by session id, plus one running-sum row per (seller, partition) kept in the
# *same* table so that both are written to one changelog partition in order: after a crash the
# recovered sums always equal the recovered sessions' contributions.
sessions = app.Table(TABLE_NAMES[0], key_type=bytes, value_type=bytes, default=None, options=ROCKSDB_OPTIONS)
faust_internals.tune_rocksdb_options(sessions.data, sessions_store_options)
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
