"""Partitions added to a raw topic while the sink runs (a group consumer: Kafka rebalances it), on the real broker
and engine: the events written to the new partitions are stored, from their start, without a restart, within the
sink's metadata refresh (``bulk_consumer_config``: 30 s; librdkafka's default, 5 minutes, before), and what the
worker cannot mend (its tables keep the old partitions) is logged and shown (``split_partitions``)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions
from prometheus_client import REGISTRY

from clickhouse.migrate import migrate
from clickhouse.sink import EventSink
from livemetrics.contract import encode
from livemetrics.kafka_config import admin_config
from tests.integration.test_clickhouse_sink import scalar, some_events
from tests.support.kafka_write import writer
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration


def test_events_on_partitions_added_to_a_raw_topic_are_stored_without_a_restart(make_settings, caplog):
    s = make_settings(sink_batch_seconds=0.2)
    migrate(s)
    topic = s.topic("page-events")
    admin = AdminClient(admin_config(s))  # kept alive to the end: librdkafka can abort when one closes mid-request
    events = [e for e in some_events(n_sessions=10, seed=41) if e.type == "page_view"]
    first, later = events[: len(events) // 2], events[len(events) // 2 :]
    p = writer(s)
    sink = EventSink(s).start()
    try:
        for e in first:
            p.produce(topic, key=e.session_id.encode(), value=encode(e), partition=0)
        assert p.flush(30) == 0
        wait_until(lambda: scalar(s, "SELECT count() FROM {db}.events") == len(first), 60, what="the first events")
        for fut in admin.create_partitions([NewPartitions(topic, s.partitions + 2)], operation_timeout=30).values():
            fut.result()
        p = writer(s)  # one that knows the new partitions
        wait_until(
            lambda: len(p.list_topics(topic, timeout=10).topics[topic].partitions) == s.partitions + 2,
            30,
            what="the new partitions in the metadata",
        )
        for e in later:  # all on the newest partition
            p.produce(topic, key=e.session_id.encode(), value=encode(e), partition=s.partitions + 1)
        assert p.flush(30) == 0
        wait_until(
            lambda: scalar(s, "SELECT count() FROM {db}.events") == len(events),
            120,  # the 30-s refresh, the rebalance and a batch, with room for a loaded machine (librdkafka's 5 min before)
            interval=0.5,
            what="the events on the added partition stored",
        )
        assert scalar(s, "SELECT uniqExact(event_id) FROM {db}.events") == len(events)
        # What cannot be mended in place is said: the worker's tables keep the old partitions (keys moved).
        split = REGISTRY.get_sample_value("livemetrics_raw_partitions_mismatch", {"topic": topic})
        assert split == 1.0, split
        assert any(
            r.levelname == "ERROR" and f"{topic} has {s.partitions + 2} partitions" in r.getMessage()
            for r in caplog.records
        )
    finally:
        sink.stop()
