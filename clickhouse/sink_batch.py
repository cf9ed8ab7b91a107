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
        self.firsts: dict[tuple[str, int], bytes] = {}  # (topic, partition) -> the value at its first offset
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
                self.firsts[(t, p)] = m.value() or b""  # for the token (once per partition and batch)
                ms = m.timestamp()[1]  # once per partition and batch: off the per-message path
                if ms > 0 and (self.oldest_ms is None or ms < self.oldest_ms):
                    self.oldest_ms = ms
            elif o > r[1]:
                r[1] = o
            elif o < r[0]:
                r[0] = o
                self.firsts[(t, p)] = m.value() or b""
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
        """The batch's insert_deduplication_token (``ranges_token``)."""
        return ranges_token(self.ranges, self.firsts)

    def commit_offsets(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, b + 1) for (t, p), (_, b) in self.ranges.items()]


def ranges_token(ranges: dict[tuple[str, int], list[int]], firsts: dict[tuple[str, int], bytes]) -> str:
    """A deduplication token: the offset ranges, so a redelivery of the same messages has the same one, and the
    value of each range's first message, so a batch of another log with the same ranges (a topic deleted and
    created again, another cluster: clickhouse/sink_logs.py) has another one; ClickHouse would drop its insert
    as a retry of the old log's batch. (The same offsets with the same first values are the same messages.)"""
    h = hashlib.sha1()
    for (t, p), (a, b) in sorted(ranges.items()):
        h.update(f"{t}/{p}:{a}-{b}:".encode())
        h.update(hashlib.sha1(firsts.get((t, p), b"")).digest())
    return h.hexdigest()
