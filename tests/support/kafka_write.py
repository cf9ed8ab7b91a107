"""A producer for what a test writes into a topic itself (events for a sink, alerts for a notifier, records of a
compacted topic, values a reader must skip): ``kafka_config.record_producer_config`` (acks=all, one request in
flight, so the records stay in their order), not idempotent. A new idempotent producer (``producer_config``)
waits ~0.5 s for its producer id (librdkafka's timer) before its first record: 0.52 s against 0.015 s for a
short-lived producer of 50 records on the tests' broker (load ~10), and the helpers make one per call. What the
product writes itself (the gateway's events, the worker's alerts) still goes through its own producers."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from livemetrics.kafka_config import record_producer_config
from livemetrics.settings import Settings


def writer(s: Settings, **overrides: Any) -> Producer:
    return Producer(record_producer_config(s, **overrides))
