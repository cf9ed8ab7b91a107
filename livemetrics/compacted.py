"""Compacted topics that every replica reads whole and then follows (the seller keys, the sellers'
notification channels): one background thread each, no database. A subclass says what one record means
(``_apply``); ``publish`` writes one record and waits until Kafka has it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from livemetrics.kafka_config import reader_config
from livemetrics.settings import Settings
from livemetrics.topic_watch import TopicWatch


def publish(
    producer_conf: dict[str, Any], topic: str, key: str, value: bytes | None, what: str, timeout_s: float
) -> None:
    """Write one record (``value`` None: a tombstone) with a short-lived producer; ``RuntimeError`` naming
    ``what`` when Kafka did not confirm it within ``timeout_s``."""
    publish_all(producer_conf, topic, [(key, value)], what, timeout_s)


def publish_all(
    producer_conf: dict[str, Any], topic: str, records: list[tuple[str, bytes | None]], what: str, timeout_s: float
) -> None:
    """``publish`` for several records through one producer (``kafka_config.record_producer_config``: not
    idempotent, so no wait for a producer id; one producer per record was 7-8 s for `up`'s 12 demo keys)."""
    p = Producer(producer_conf)
    err: list[KafkaError] = []
    for key, value in records:
        p.produce(topic, key=key.encode(), value=value, on_delivery=lambda e, m: err.append(e) if e else None)
    if p.flush(timeout_s) or err:
        raise RuntimeError(f"could not store the {what} in Kafka: {err[0] if err else 'timed out'}")


def wait_all(timeout_s: float, *waits: Callable[[float], bool]) -> bool:
    """Wait for each of these readers, all started already, within one ``timeout_s`` (not one each: with
    Kafka away a start waited the sum of their waits, ~28 s for the gateway); whether all are ready."""
    deadline = time.monotonic() + timeout_s
    return all([wait(max(0.0, deadline - time.monotonic())) for wait in waits])


class CompactedFollower:
    """Reads the whole topic from offset 0, then follows it; ``ready`` once every partition was read to
    its end at least once.

    A topic deleted and created again while it runs: its new log is read from its start and applied over
    what was read before (records of the old log that the new one lacks stay until a restart): at once when
    the reader's position lies past the new log's end (librdkafka's reset, ``reader_config``), else when the
    topic's new id is seen (``TopicWatch``, every ``reader_topic_check_s``: a new log that grew past the
    position before the reader fetched from it, which librdkafka reads from that position on). Partitions
    added to the topic are read from their start within the same period."""

    def __init__(self, settings: Settings, logical_topic: str, thread_name: str):
        self.settings = settings
        self.topic = settings.topic(logical_topic)
        self._thread_name = thread_name
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _apply(self, msg: Message) -> None:
        raise NotImplementedError

    def start_following(self, wait_s: float) -> None:
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()
        self._ready.wait(wait_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        """Whether the whole topic has been read, waiting up to ``timeout`` seconds for it."""
        return self._ready.wait(timeout)

    def _partitions(self, c: Consumer) -> list[int]:
        """The topic's partitions, once the broker answers and the topic exists ([] when stopped first)."""
        while not self._stop.is_set():
            try:
                t = c.list_topics(self.topic, timeout=5).topics.get(self.topic)
                parts = list(t.partitions) if t is not None and not t.error else []
            except Exception:  # noqa: BLE001 - broker not up yet; keep trying
                parts = []
            if parts:
                return parts
            time.sleep(0.5)
        return []

    def _run(self) -> None:
        c = Consumer(
            # a recreated topic's new log read from its start (reader_config): before, the keys and channels
            # written to it were not seen by this process until a restart
            reader_config(self.settings)
        )
        watch = TopicWatch(self.settings, self.topic, self._thread_name)
        try:
            parts = self._partitions(c)
            if not parts:
                return
            watch.remember(parts)
            c.assign([TopicPartition(self.topic, p, 0) for p in parts])  # offset 0: read it all
            eof: set[int] = set()
            while not self._stop.is_set():
                if watch.due() and (change := watch.look()) is not None:
                    parts = change.partitions
                    if change.recreated:  # a new log: all of it, applied over what was read
                        c.assign([TopicPartition(self.topic, p, 0) for p in parts])
                    else:
                        c.incremental_assign([TopicPartition(self.topic, p, 0) for p in change.added])
                msg = c.poll(0.2)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        eof.add(msg.partition() or 0)
                        if len(eof) == len(parts):
                            self._ready.set()
                    continue
                self._apply(msg)
        finally:
            watch.close()
            c.close()
