"""Durable delivery to Kafka: a request is answered only after the broker confirmed every event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from queue import SimpleQueue

from confluent_kafka import KafkaException, Producer

from livemetrics.kafka_config import gateway_producer_config
from livemetrics.outage_log import Outage
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.gateway")


class DeliveryUnavailable(RuntimeError):
    """Events could not be made durable (broker unreachable, queue full, delivery timed out)."""


class _Pending:
    """The delivery reports of one request, counted without a Python call per report.

    The producer calls ``report(err, msg)`` for each message; ``SimpleQueue.put(item, block)`` is a C
    method with that shape, so each report only queues its ``err`` (None when delivered). Reports are
    served by ``poll()`` on the event loop's own thread (see ``KafkaDelivery``), which settles every
    request whose reports are all in right after it: no thread hop, no wake-up pipe, no fight for the
    GIL, and no later than a callback would."""

    __slots__ = ("future", "n", "errors", "report")

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int):
        self.future: asyncio.Future = loop.create_future()
        self.n = n
        self.errors = SimpleQueue()
        self.report = self.errors.put

    def settle(self) -> bool:
        """Resolve the future once every report is in (the first error, if any, fails it); True then."""
        errors = self.errors
        if errors.qsize() < self.n:
            return False
        if not self.future.done():
            while not errors.empty():
                err = errors.get_nowait()
                if err is not None:
                    self.future.set_exception(DeliveryUnavailable(str(err)))
                    return True
            self.future.set_result(None)
        return True


class KafkaDelivery:
    """The producer of one gateway process.

    Delivery reports are served on the event loop (``poll(0)`` every ``POLL_S`` while requests wait),
    not on a thread of their own: a poll thread needs the GIL for every report and takes it from the
    request handling, which measured slower under load. Outside the loop (shutdown), ``flush`` serves them.
    """

    POLL_S = 0.001  # while requests wait: adds at most this much to a 202
    IDLE_S = 0.05  # otherwise: dead letters' reports must be served too, or they fill the queue

    def __init__(self, settings: Settings, **overrides):
        self.settings = settings
        self.producer = Producer(gateway_producer_config(settings, **overrides))
        self._waiting: set[_Pending] = set()  # requests waiting for their reports
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        # Requests refused for want of the broker, logged as the sink, the live feed and the notifier log
        # their outages (livemetrics/outage_log.py): ``gateway: lost Kafka since <UTC>: <why>`` at the first
        # 503, ``gateway: Kafka back after N s (M failed tries)`` at the first acknowledgement after them
        # (M: the requests answered 503), each refusal in between at debug (librdkafka's own lines during
        # an outage are throttled: livemetrics/kafka_logs.py).
        self.kafka = Outage(log, "gateway", "Kafka")

    def _failed(self, why: str) -> None:
        if not self.kafka.failed(f"events not acknowledged, answering 503 until they are: {why}"):
            log.debug("gateway: Kafka did not acknowledge a request's events again (503): %s", why)

    def _tick(self) -> None:
        served = self.producer.poll(0)
        self._timer = None
        if served and self._waiting:
            self._waiting = {p for p in self._waiting if not p.settle()}
        if not self._closed:
            self._schedule()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self.POLL_S if self._waiting else self.IDLE_S, self._tick
            )

    def _hurry(self) -> None:
        """A request waits: make sure the next poll comes within ``POLL_S``."""
        if self._timer is not None and self._timer.when() - asyncio.get_running_loop().time() > self.POLL_S:
            self._timer.cancel()
            self._timer = None
        self._schedule()

    async def send(self, records: Iterable[tuple[str, bytes, bytes]], count: int) -> None:
        """Produce (topic, key, value) records; return once all are acknowledged by the broker."""
        if count == 0:
            return
        pending = _Pending(asyncio.get_running_loop(), count)
        produce = self.producer.produce
        report = pending.report
        try:
            for topic, key, value in records:
                # Positional (partition -1: the partitioner decides): a third cheaper than keywords.
                produce(topic, value, key, -1, report)
        except (BufferError, KafkaException) as exc:
            # What was queued still completes; the client retries the whole request with the same
            # event ids and de-duplication downstream makes that safe.
            self._failed(str(exc))
            raise DeliveryUnavailable(f"local queue full or producer failed: {exc}") from None
        self._waiting.add(pending)
        self._hurry()
        try:
            await pending.future
        except DeliveryUnavailable as exc:
            self._failed(str(exc))
            raise
        finally:
            self._waiting.discard(pending)
        self.kafka.ok()  # logs the end of an outage; otherwise returns at its first test

    def send_soon(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Fire-and-forget (dead letters): never blocks a request on it."""
        try:
            self.producer.produce(topic, value, key)
        except (BufferError, KafkaException):
            pass
        self._schedule()

    def close(self, timeout: float = 10.0) -> int:
        """Flush in-flight events; return how many could not be delivered."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return self.producer.flush(timeout)
