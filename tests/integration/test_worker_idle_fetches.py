"""The worker's fetch requests, as its sessions agent sets them up (``streams/faust_internals.py``
``set_fetch_wait`` and ``hold_idle_fetches`` with the settings' defaults), on an aiokafka consumer against the
real broker: an idle worker's fetches wait on the broker instead of coming back empty every 20 ms (~45 a second,
the broker's largest idle cost: docs/architecture.md, Broker CPU), and under a steady stream they stay at most one
per ``worker_fetch_wait_ms``, as before."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from livemetrics.kafka_config import admin_config, producer_config
from livemetrics.settings import Settings
from streams import faust_internals

pytestmark = pytest.mark.integration


def _topic(s: Settings) -> str:
    name = f"fetch-pacing-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(admin_config(s))  # referenced until the result: a collected client fails its futures
    admin.create_topics([NewTopic(name, 3, 1)])[name].result(timeout=30)
    return name


async def _fetches(s: Settings, topic: str, seconds: float, produce_per_s: int = 0) -> tuple[int, int]:
    """(fetch requests sent, messages read) by a consumer of ``topic`` set up as the worker's, over ``seconds``
    (with ``produce_per_s`` messages a second written meanwhile)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    sent = 0
    send = consumer._client.send

    async def counting(node_id, request, *args, **kwargs):
        nonlocal sent
        sent += type(request).__name__.startswith("FetchRequest")
        return await send(node_id, request, *args, **kwargs)

    consumer._client.send = counting
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        deadline = time.monotonic() + 30
        while len(consumer.partitions_for_topic(topic) or ()) < 3:  # its metadata first, or nothing is fetched
            assert time.monotonic() < deadline, "the consumer never saw the topic's 3 partitions"
            await consumer._client.force_metadata_update()
        await consumer.seek_to_end()
        faust = SimpleNamespace(_thread=SimpleNamespace(_consumer=consumer))  # where Faust keeps it
        assert faust_internals.set_fetch_wait(faust, s.worker_fetch_min_bytes, s.worker_fetch_wait_ms)
        if s.worker_idle_fetch_wait_ms:
            assert faust_internals.hold_idle_fetches(
                faust, s.worker_fetch_min_bytes, s.worker_fetch_wait_ms, s.worker_idle_fetch_wait_ms
            )
        await consumer.getmany(timeout_ms=1000)  # the settings in force from here
        producer = Producer(producer_config(s, **{"linger.ms": 0})) if produce_per_s else None
        sent, read, written = 0, 0, 0
        start = time.monotonic()
        while (now := time.monotonic() - start) < seconds:
            while producer and written < now * produce_per_s:
                producer.produce(topic, value=b"e" * 100, partition=written % 3)
                written += 1
            if producer:
                producer.poll(0)
            batch = await consumer.getmany(timeout_ms=5)
            read += sum(len(v) for v in batch.values())
        fetches = sent
        if producer:
            assert producer.flush(10) == 0
            deadline = time.monotonic() + 10
            while read < written and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=100)
                read += sum(len(v) for v in batch.values())
            assert read == written
        return fetches, read
    finally:
        await consumer.stop()


def test_an_idle_workers_fetches_wait_on_the_broker(settings):
    s = settings
    topic = _topic(s)
    fetches, _ = asyncio.run(_fetches(s, topic, seconds=3.0))
    # each held by the broker for its 200 ms (worker_idle_fetch_wait_ms): ~15 in 3 s; at 20 ms and 64 KB, ~120
    assert s.worker_idle_fetch_wait_ms >= 200
    assert fetches <= 3.0 / 0.2 + 5, fetches


def test_under_a_steady_stream_the_worker_fetches_at_most_once_an_interval(settings):
    s = settings
    topic = _topic(s)
    fetches, read = asyncio.run(_fetches(s, topic, seconds=3.0, produce_per_s=3000))
    assert read >= 8000
    # every message read, in at most one fetch per worker_fetch_wait_ms (20 ms) as before: 150 in 3 s
    assert fetches <= 3.0 / (s.worker_fetch_wait_ms / 1000) + 4, fetches
