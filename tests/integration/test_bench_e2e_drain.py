"""``bench e2e``'s ``lag_drained_s``: how long the worker and the sink took, after a step's load ended, to read
and commit what their partitions held then. The worker's group also reads topics it keeps writing itself
after the load (session ticks, live deltas) and commits them within its commit interval, so its lag is 0 only
at lucky moments; measured as "both lags 0" a drain read 17.6 s after a step whose events were all read
within ~2 s (BENCHMARKS.md, thirteenth session)."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from livemetrics.kafka_config import consumer_config, producer_config
from livemetrics.topics import create_topics
from operations.bench import e2e

pytestmark = pytest.mark.integration


def _commit(settings, group: str, tp: TopicPartition) -> None:
    c = Consumer(consumer_config(settings, group))
    try:
        c.commit(offsets=[tp], asynchronous=False)
    finally:
        c.close()


def _high(settings, topic: str) -> int:
    c = Consumer(consumer_config(settings, "bench-drain-test-high"))
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def test_the_drain_ends_once_the_backlog_is_committed_though_the_worker_keeps_one_tick_unread(settings, monkeypatch):
    create_topics(settings)
    events, ticks = settings.topic("page-events"), settings.topic("session-ticks")
    producer = Producer(producer_config(settings))
    for i in range(20):
        producer.produce(events, b"e%d" % i, partition=0)
    producer.produce(ticks, b"t", partition=0)
    assert producer.flush(10) == 0
    end = _high(settings, events)
    _commit(settings, settings.app_id, TopicPartition(events, 0, end))  # the worker has read every event
    _commit(settings, settings.app_id, TopicPartition(ticks, 0, 0))
    _commit(settings, settings.sink_group, TopicPartition(events, 0, end - 10))  # the sink is 10 events behind

    stop, stored_at = threading.Event(), []

    def the_worker_and_the_sink() -> None:
        # The worker writes a tick every 50 ms and has always read all but the latest one (its lag on the
        # tick partition never 0); the sink commits its last 10 events 1 s after the load ended.
        started = time.monotonic()
        while not stop.is_set():
            producer.produce(ticks, b"t", partition=0)
            producer.flush(10)
            _commit(settings, settings.app_id, TopicPartition(ticks, 0, _high(settings, ticks) - 1))
            if not stored_at and time.monotonic() - started >= 1.0:
                _commit(settings, settings.sink_group, TopicPartition(events, 0, end))
                stored_at.append(time.monotonic())
            stop.wait(0.05)  # the worker's tick interval (nothing to wait for: it writes on a clock)

    monkeypatch.setattr(e2e, "DRAIN_TIMEOUT_S", 4.0)
    thread = threading.Thread(target=the_worker_and_the_sink, daemon=True)
    since = time.monotonic()
    thread.start()
    try:
        drained = e2e._drain(settings, since)
    finally:
        stop.set()
        thread.join(10)
    assert stored_at, "the sink's commit was not made"
    assert stored_at[0] - since <= drained < 4.0
