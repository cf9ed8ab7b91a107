"""Session states (their stored bytes) kept in memory in front of the sessions table's RocksDB store.

In the whole stack at 15,000 events/s the RocksDB get of each event's session was the worker's largest
single cost (~12 % of its CPU, profiled with py-spy: BENCHMARKS.md, Profiling notes); decoding the
bytes is a tenth of that. A session's events come close together (a page view every few seconds while
it is on the site), so the state written by one batch is what the next batch of that session reads.
The bytes, not decoded states, are kept: ~0.4 KB an entry against ~1.5 KB.

Exact because it is a write-through mirror of the store, never a second source of truth:
- an entry is what the store holds for that key now: the bytes read from it, or the bytes (or
  ``None`` for a key deleted or never stored) that ``PartitionBatch.write`` has just put into it. Every
  write of the sessions store while this worker owns a partition goes through that one place;
- the whole cache goes at every revocation (``session_memory.forget``), before the table's recovery
  replays changelogs into the store; a batch folded before the revocation holds the old cache and is
  refused at its write (``StaleBatch``), so nothing it read reaches the new one;
- a failed write drops the cache (``drop``): the store may hold part of the batch.
Bounded: least recently used entries go past ``capacity`` (``LIVEMETRICS_SESSION_CACHE_ENTRIES``)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

MISSING: Final = object()  # not cached: ask the store


class StateCache:
    """Least-recently-used map of session key -> the bytes the store holds (``None``: no row)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[bytes, bytes | None] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: bytes) -> bytes | None | object:
        """The cached bytes, ``None`` for a key known not stored, or ``MISSING``."""
        entries = self._entries
        raw = entries.get(key, MISSING)  # not a KeyError on a miss (~1 us each)
        if raw is MISSING:
            self.misses += 1
            return MISSING
        entries.move_to_end(key)
        self.hits += 1
        return raw

    def put(self, key: bytes, raw: bytes | None) -> None:
        """Remember what the store now holds for ``key``."""
        if self.capacity <= 0:
            return
        entries = self._entries
        entries[key] = raw
        entries.move_to_end(key)
        if len(entries) > self.capacity:
            entries.popitem(last=False)

    def put_all(self, items: list[tuple[bytes, bytes | None]]) -> None:
        """``put`` of each (key, bytes) in turn (the least recently used go once, after all of them: the
        same entries stay as with one ``put`` after the other, as each key comes once)."""
        if self.capacity <= 0:
            return
        entries = self._entries
        move = entries.move_to_end
        for key, raw in items:
            entries[key] = raw
            move(key)
        for _ in range(len(entries) - self.capacity):
            entries.popitem(last=False)

    def drop(self) -> None:
        """Forget everything (the store may differ from what was cached)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
