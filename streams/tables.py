"""Faust tables, backed by changelog topics. Keys and values are bytes (msgpack / JSON) so that a
million sessions stay small in memory and in RocksDB."""

from __future__ import annotations

from livemetrics.settings import TABLE_NAMES
from streams.app import app

# Session states, keyed by session id, plus one running-sum row per (seller, partition) kept in the
# *same* table so that both are written to one changelog partition in order: after a crash the
# recovered sums always equal the recovered sessions' contributions.
sessions = app.Table(TABLE_NAMES[0], key_type=bytes, value_type=bytes, default=None)
# Per-seller gauges: for each source partition the latest (generation, seq, sums) it reported.
gauges = app.Table(TABLE_NAMES[1], key_type=bytes, value_type=bytes, default=None)
