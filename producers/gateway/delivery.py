"""Durable delivery to Kafka: a request is answered only after the broker confirmed every event."""

from __future__ import annotations

import asyncio
import threading
from typing import Iterable

from confluent_kafka import KafkaException, Producer

from livemetrics.kafka_config import producer_config
from livemetrics.settings import Settings


class DeliveryUnavailable(RuntimeError):
    """Events could not be made durable (broker unreachable, queue full, delivery timed out)."""


class _Pending:
    """Counts down the delivery reports of one request; resolves its future on the event loop."""

    __slots__ = ("loop", "future", "left", "error")

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int):
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self.left = n
        self.error: str | None = None

    def __call__(self, err, msg) -> None:  # runs on the poll thread
        if err is not None and self.error is None:
            self.error = str(err)
        self.left -= 1
        if self.left == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.future.done():
            if self.error:
                self.future.set_exception(DeliveryUnavailable(self.error))
            else:
                self.future.set_result(None)


class KafkaDelivery:
    def __init__(self, settings: Settings, **overrides):
        self.settings = settings
        self.producer = Producer(producer_config(settings, **overrides))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def send(self, records: Iterable[tuple[str, bytes, bytes]], count: int) -> None:
        """Produce (topic, key, value) records; return once all are acknowledged by the broker."""
        if count == 0:
            return
        pending = _Pending(asyncio.get_running_loop(), count)
        produce = self.producer.produce
        sent = 0
        try:
            for topic, key, value in records:
                produce(topic, value, key, on_delivery=pending)
                sent += 1
        except (BufferError, KafkaException) as exc:
            # What was queued still completes; the client retries the whole request with the same
            # event ids and de-duplication downstream makes that safe.
            for _ in range(count - sent):
                pending(f"not queued: {exc}", None)
            raise DeliveryUnavailable(f"local queue full or producer failed: {exc}") from None
        await pending.future

    def send_soon(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Fire-and-forget (dead letters): never blocks a request on it."""
        try:
            self.producer.produce(topic, value, key)
        except (BufferError, KafkaException):
            pass

    def close(self, timeout: float = 10.0) -> int:
        """Flush in-flight events; return how many could not be delivered."""
        left = self.producer.flush(timeout)
        self._stop.set()
        self._thread.join(2)
        return left
