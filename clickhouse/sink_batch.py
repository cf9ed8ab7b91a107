"""What the sink has consumed and not inserted yet: raw-topic messages as the JSON lines that
``events_json`` inserts, payment alerts as messages, and the offset range of every partition.

Line ``i`` is ``heads[i] + values[i] + b"]\n"``: the head ``[i,"topic",partition,offset,`` and the message
value as it came (kept apart, so that it is copied once, when the lines are written out).
The Kafka Message objects of raw topics are dropped as soon as they are read. Hundreds of thousands of
them alive in a buffer made the garbage collector rescan them over and over (a quarter of the sink's
CPU); heads and values are bytes, which it never scans.
"""

from __future__ import annotations

import hashlib
import logging
import time

from confluent_kafka import KafkaError, TopicPartition

log = logging.getLogger("livemetrics.sink")


class Batch:
    def __init__(self, alerts_topic: str):
        self.alerts_topic = alerts_topic
        self.heads: list[bytes] = []  # one per raw-topic message, numbered from 0
        self.values: list[bytes] = []
        self.alerts: list = []  # Messages of the alerts topic (few)
        self.ranges: dict[tuple[str, int], list[int]] = {}  # (topic, partition) -> [first, last] offset
        self.first_at = 0.0  # monotonic time of the first message
        self.oldest_ms: int | None = None  # the earliest Kafka timestamp of a partition's first message
        self._topic_bytes: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self.heads) + len(self.alerts)

    def add(self, msgs: list) -> None:
        """Take in what ``Consumer.consume`` returned (messages carrying an error are logged, not kept)."""
        heads, values, ranges, topic_bytes = self.heads, self.values, self.ranges, self._topic_bytes
        was_empty = not len(self)
        for m in msgs:
            if m.error() is not None:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", m.error())
                continue
            t, p, o = m.topic(), m.partition(), m.offset()
            r = ranges.get((t, p))
            if r is None:
                ranges[(t, p)] = [o, o]
                ms = m.timestamp()[1]  # once per partition and batch: off the per-message path
                if ms > 0 and (self.oldest_ms is None or ms < self.oldest_ms):
                    self.oldest_ms = ms
            elif o > r[1]:
                r[1] = o
            elif o < r[0]:
                r[0] = o
            if t == self.alerts_topic:
                self.alerts.append(m)
                continue
            tb = topic_bytes.get(t)
            if tb is None:
                # Kafka topic names are [A-Za-z0-9._-]: a JSON string without escaping
                tb = topic_bytes[t] = t.encode()
            heads.append(b'[%d,"%b",%d,%d,' % (len(heads), tb, p, o))
            values.append(m.value() or b"")
        if was_empty and len(self):
            self.first_at = time.monotonic()

    def token(self) -> str:
        """The batch's insert_deduplication_token: its offset ranges, so a redelivery has the same one."""
        ranges = ",".join(f"{t}/{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.ranges.items()))
        return hashlib.sha1(ranges.encode()).hexdigest()

    def commit_offsets(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, b + 1) for (t, p), (_, b) in self.ranges.items()]
