"""Which sellers' deliveries a notifier may send: those whose ``payment-alerts`` partition its intake is
assigned. Several notifiers (API replicas that deliver, or several ``livemetrics notifier`` processes) in
one ``notify_group`` then split the sellers as Kafka splits the partitions, and a delivery, its retries
included, has one sender at a time: the one owning its seller (docs/notifications.md, "Several notifiers").

A seller's partition is the one the worker's alerts for it go to: the key is the seller id, and the
worker's producer (aiokafka) partitions keys with Kafka's default murmur2 partitioner, as the gauges
agent already relies on (``streams/agents/gauges.py``)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from aiokafka.partitioner import murmur2


def partition_of(seller: str, partitions: int) -> int:
    """The payment-alerts partition of ``seller``'s alerts (Kafka's default partitioner for a key)."""
    return (murmur2(seller.encode()) & 0x7FFFFFFF) % partitions


class Ownership:
    """The partitions assigned now, changed by the intake's consumer thread, read on the event loop.

    Each change replaces one immutable pair (a reader sees the old or the new one, never half)."""

    def __init__(self) -> None:
        self._now: tuple[frozenset[int], int] = (frozenset(), 0)  # (assigned partitions, topic's partitions)
        self._lock = threading.Lock()  # writers only
        self._memo: dict[str, tuple[int, int]] = {}  # seller -> (topic's partitions, its partition)

    def assign(self, partitions: Iterable[int], count: int) -> None:
        with self._lock:
            self._now = (self._now[0] | frozenset(partitions), count)

    def revoke(self, partitions: Iterable[int]) -> None:
        with self._lock:
            self._now = (self._now[0] - frozenset(partitions), self._now[1])

    @property
    def partitions(self) -> frozenset[int]:
        return self._now[0]

    def owns(self, seller: str) -> bool:
        assigned, count = self._now
        if not count or not assigned:
            return False
        memo = self._memo.get(seller)
        if memo is None or memo[0] != count:
            memo = self._memo[seller] = (count, partition_of(seller, count))
        return memo[1] in assigned
