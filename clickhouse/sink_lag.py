"""How far behind ClickHouse is: the sink's lag, for ``/metrics``, ``/readyz`` and the dashboard.

- events behind, per topic/partition: the partition's high watermark (librdkafka's cached value, updated
  by every fetch: no broker round trip) minus the first offset not stored. That is the first offset of
  the partition in the batches the sink holds (consumed, not stored: they are stored and committed in
  order), else the consumer's position (everything handed out is stored), else where the assignment
  started;
- the age of the oldest unstored event: the earliest Kafka timestamp among the held batches' first
  message of each partition (0 when the sink holds nothing);
- stalled: there is a lag and nothing was stored for ``sink_stall_s`` (catching up counts as progress,
  so an idle sink is never stalled).

Measured on the sink's thread (it owns the consumer) at most once a second; read from any thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition

from clickhouse.sink_batch import Batch
from livemetrics import metrics
from livemetrics.settings import Settings


class LagWatch:
    def __init__(self, settings: Settings):
        self.stall_s = settings.sink_stall_s
        self.behind: dict[tuple[str, int], int] = {}
        self.oldest_ms: int | None = None
        self.last_progress = time.monotonic()
        self._starts: dict[tuple[str, int], int] = {}
        self._measured_at = 0.0

    def assigned(self, partitions: list[TopicPartition]) -> None:
        self._starts = {(tp.topic, tp.partition): tp.offset for tp in partitions}
        self.last_progress = time.monotonic()  # a new assignment has had no time to store anything

    def progressed(self, held: Iterable[Batch] | None = None) -> None:
        """Something was stored; ``held``: what is left, for the oldest unstored event's age at once."""
        self.last_progress = time.monotonic()
        if held is not None:
            self.oldest_ms = min((b.oldest_ms for b in held if b.oldest_ms), default=None)

    def measure(self, consumer: Consumer, held: Iterable[Batch], every_s: float = 1.0) -> None:
        now = time.monotonic()
        if now - self._measured_at < every_s:
            return
        self._measured_at = now
        first: dict[tuple[str, int], int] = {}
        oldest = None
        for batch in held:
            for key, (lo, _) in batch.ranges.items():
                if lo < first.get(key, lo + 1):
                    first[key] = lo
            if batch.oldest_ms and (oldest is None or batch.oldest_ms < oldest):
                oldest = batch.oldest_ms
        assigned = consumer.assignment()
        positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(assigned)} if assigned else {}
        behind = {}
        for tp in assigned:
            key = (tp.topic, tp.partition)
            low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                continue  # nothing fetched yet: not known
            stored = first.get(key, positions.get(key, -1))
            if stored < 0:
                stored = self._starts.get(key, -1)
            if stored < 0:
                stored = max(low, 0)
            behind[key] = max(high - stored, 0)
        self.oldest_ms = oldest
        for key in self.behind.keys() - behind.keys():
            metrics.SINK_LAG.remove(key[0], str(key[1]))
        for (topic, partition), n in behind.items():
            metrics.SINK_LAG.labels(topic, str(partition)).set(n)
        self.behind = behind
        if not any(behind.values()):
            self.progressed()  # caught up

    def forget(self) -> None:
        """A stopped sink owns no partition: its per-partition lag leaves /metrics (another sink, or the next
        one in this process, reports what it is assigned)."""
        for key in self.behind:
            metrics.SINK_LAG.remove(key[0], str(key[1]))
        self.behind = {}

    def export(self) -> None:
        """The gauges read at scrape time (time moves on while the sink waits)."""
        metrics.SINK_OLDEST_UNSTORED.set_function(self.oldest_unstored_s)
        metrics.SINK_STALLED.set_function(lambda: 1.0 if self.stalled() else 0.0)

    def events_behind(self) -> int:
        return sum(self.behind.values())

    def oldest_unstored_s(self) -> float:
        oldest = self.oldest_ms
        return max(time.time() - oldest / 1000, 0.0) if oldest else 0.0

    def since_progress_s(self) -> float:
        return time.monotonic() - self.last_progress

    def stalled(self) -> bool:
        return self.events_behind() > 0 and self.since_progress_s() > self.stall_s

    def status(self) -> dict:
        return {
            "events_behind": self.events_behind(),
            "oldest_unstored_s": round(self.oldest_unstored_s(), 1),
            "seconds_since_progress": round(self.since_progress_s(), 1),
            "stalled": self.stalled(),
        }
