"""When each session next needs a look (expiry), kept in memory and rebuilt from the table after a
rebalance."""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class Deadlines:
    """Keys in buckets of ``BUCKET_MS`` (rounded up, so a key is never looked at before its time), a
    heap of bucket starts. A key may be in several buckets (each write adds one; a stale one finds
    nothing due and costs one read)."""

    BUCKET_MS = 100

    __slots__ = ("buckets", "heap")

    def __init__(self) -> None:
        self.buckets: dict[int, list[bytes]] = {}
        self.heap: list[int] = []

    def push(self, due_ms: int, key: bytes) -> None:
        """``key`` is due at ``due_ms`` (a tick's stale deadline, a rebuild: not per event)."""
        self.push_all(((due_ms, key),))

    def push_all(self, dues: Iterable[tuple[int, bytes]]) -> None:
        """Each (due_ms, key) is due then (a batch's written sessions at once: one call, not one a key)."""
        buckets, heap, size = self.buckets, self.heap, self.BUCKET_MS
        for due_ms, key in dues:
            b = -(-due_ms // size)
            keys = buckets.get(b)
            if keys is None:
                keys = buckets[b] = []
                heapq.heappush(heap, b)
            keys.append(key)

    def pop_due(self, now_ms: int) -> list[bytes]:
        out: list[bytes] = []
        heap, limit = self.heap, now_ms // self.BUCKET_MS
        while heap and heap[0] <= limit:
            out.extend(self.buckets.pop(heapq.heappop(heap)))
        return out

    def __len__(self) -> int:
        return sum(len(v) for v in self.buckets.values())
