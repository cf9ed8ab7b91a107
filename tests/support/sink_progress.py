"""How far a sink's consumer group got: a signal that it has handled every message, including the ones it
stored nothing for (copies of events already stored, clickhouse/queries/sink_events_unseen.sql)."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from livemetrics.kafka_config import consumer_config
from livemetrics.settings import Settings


def sink_caught_up(settings: Settings, topics: list[str]) -> bool:
    """The sink's group has committed every partition of ``topics`` up to its end (an empty one counts)."""
    c = Consumer(consumer_config(settings, settings.sink_group))
    try:
        tps = [TopicPartition(t, p) for t in topics for p in c.list_topics(t, timeout=10).topics[t].partitions]
        committed = {(tp.topic, tp.partition): tp.offset for tp in c.committed(tps, timeout=10)}
        ends = {(tp.topic, tp.partition): c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        return all(end == 0 or committed[k] >= end for k, end in ends.items())
    finally:
        c.close()
