"""What the sink has consumed and not inserted yet: raw-topic messages already framed as the JSON lines
that ``events_json`` inserts, payment alerts as messages, and the offset range of every partition.

The Kafka Message objects of raw topics are dropped as soon as they are read. Hundreds of thousands of
them alive in a buffer made the garbage collector rescan them over and over (a quarter of the sink's
CPU); the lines are bytes, which it never scans.
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
        self.lines: list[bytes] = []  # one per raw-topic message, numbered from 0
        self.alerts: list = []  # Messages of the alerts topic (few)
        self.ranges: dict[tuple[str, int], list[int]] = {}  # (topic, partition) -> [first, last] offset
        self.first_at = 0.0  # monotonic time of the first message
        self._topic_bytes: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self.lines) + len(self.alerts)

    def add(self, msgs: list) -> None:
        """Take in what ``Consumer.consume`` returned (messages carrying an error are logged, not kept)."""
        lines, ranges, topic_bytes = self.lines, self.ranges, self._topic_bytes
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
            lines.append(b'[%d,"%b",%d,%d,%b]\n' % (len(lines), tb, p, o, m.value() or b""))
        if was_empty and len(self):
            self.first_at = time.monotonic()

    def token(self) -> str:
        """The batch's insert_deduplication_token: its offset ranges, so a redelivery has the same one."""
        ranges = ",".join(f"{t}/{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.ranges.items()))
        return hashlib.sha1(ranges.encode()).hexdigest()

    def commit_offsets(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, b + 1) for (t, p), (_, b) in self.ranges.items()]
