"""The raw topics' record-size limits, as the broker has them (``max.message.bytes``).

A topic whose limit an operator lowered under our largest valid event refuses such events for good
(``MSG_SIZE_TOO_LARGE``): answered 503 + Retry-After, every retry was refused again, for ever, and the
operator saw nothing specific. Worse, the broker checks the limit per record *batch*, so one large event
failed every other seller's events that shared its batch. Now the gateway reads the limits at start and
every ``REFRESH_S`` (at once after a refusal), and:

- an event whose record would not fit its topic is rejected on its own (``topic_limit``), with an error
  that says it is the server's configuration, not the event, and is kept in dead-letter: the rest of the
  request is delivered, other sellers are untouched;
- the producer's ``batch.size`` stays under the smallest limit seen at start, so small events are never
  batched past it (a limit lowered later needs a gateway restart for this part: logged);
- a limit under ``REQUIRED_BYTES`` (the largest valid event) is logged as an error naming the topic and
  both figures, and listed in ``/readyz``'s ``problems`` (the status stays 200: every replica has the same
  limits, and taking them all out of a load balancer would refuse every event instead of a few)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import lz4.frame
from confluent_kafka.admin import AdminClient, ConfigResource

from livemetrics.contract import MAX_EVENT_BYTES
from livemetrics.kafka_config import admin_config
from livemetrics.kafka_logs import client_logger
from livemetrics.settings import RAW_TOPICS, Settings

log = logging.getLogger("livemetrics.gateway")

REFRESH_S = 60.0
MIN_REFRESH_S = 5.0  # between two reads however often refusals ask for one
# What the gateway adds to an event (seller, times, user agent up to 512 characters, its parsed parts,
# IP hash, money as decimal strings): measured far under this; an estimate, the per-record check is exact.
STAMPS_BYTES = 8 * 1024
# A one-record batch's own framing (61-byte batch header, the record's varints and attributes) and its
# key (a session id, at most 64 characters, 256 bytes of UTF-8).
FRAMING_BYTES = 512


def batch_bytes(value_len: int) -> int:
    """The most a one-record batch with a value of ``value_len`` bytes can take on the broker: lz4 may
    grow data it cannot compress by ~0.4 %."""
    return value_len + value_len // 200 + 16 + FRAMING_BYTES


NO_CAP = 1 << 62  # no limit known
REQUIRED_BYTES = batch_bytes(MAX_EVENT_BYTES + STAMPS_BYTES)  # the least max.message.bytes a raw topic needs


def value_cap(limit: int) -> int:
    """The largest value whose one-record batch fits ``limit`` bytes."""
    v = max(0, (limit - 16 - FRAMING_BYTES) * 200 // 201)
    while batch_bytes(v + 1) <= limit:
        v += 1
    while v > 0 and batch_bytes(v) > limit:
        v -= 1
    return v


class TopicLimits:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topics = [settings.topic(t) for t in RAW_TOPICS]
        self.limits: dict[str, int] = {}  # topic -> max.message.bytes, once read
        self.caps: dict[str, int] = {}  # topic -> the largest record value that fits it
        self.smallest_cap = NO_CAP  # of every topic's: under it, no record needs a second look
        self.problems: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: AdminClient | None = None

    def _admin(self) -> AdminClient:
        """One admin client for the process's life, its lines through the throttled client logger
        (``kafka_logs``): served by ``poll`` here, or a broker outage printed ~200 lines to stderr per refresh."""
        if self._client is None:
            conf: dict[str, Any] = {**admin_config(self.settings), "logger": client_logger()}
            self._client = AdminClient(conf)
        return self._client

    def refresh(self, timeout: float = 10.0) -> bool:
        """Read the limits; False when the broker did not answer (the last ones read stay)."""
        admin = self._admin()
        try:
            futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in self.topics])
            deadline = time.monotonic() + timeout
            while not all(f.done() for f in futures.values()) and time.monotonic() < deadline:
                admin.poll(0.1)
            limits = {}
            for resource, future in futures.items():
                entry = future.result(timeout=0).get("max.message.bytes")
                if entry is not None and entry.value is not None:
                    limits[resource.name] = int(entry.value)
        except Exception as exc:  # noqa: BLE001 - broker away or topic missing: keep what we had
            log.debug("topic limits not read: %s", exc)
            return False
        self.set(limits)
        return True

    def set(self, limits: dict[str, int]) -> None:
        problems = [
            f"topic {t} accepts record batches of at most {n} bytes (max.message.bytes), under the "
            f"{REQUIRED_BYTES} bytes the largest valid event needs: events over {value_cap(n)} bytes once "
            "stamped are refused; raise the topic's max.message.bytes"
            for t, n in sorted(limits.items())
            if n < REQUIRED_BYTES
        ]
        if problems != self.problems:
            for p in problems:
                log.error("%s", p)
            if self.problems and not problems:
                log.warning("every raw topic accepts the largest valid event again")
        if self.limits and any(limits.get(t, n) < n for t, n in self.limits.items()):
            log.error("a raw topic's max.message.bytes was lowered: restart the gateway to size its batches to it")
        self.caps = {t: value_cap(n) for t, n in limits.items()}
        self.smallest_cap = min(self.caps.values(), default=NO_CAP)
        self.limits, self.problems = limits, problems

    def refusal(self, topic: str, value: bytes) -> str | None:
        """Why the broker would refuse ``value`` (over the topic's uncompressed cap): its lz4 frame, as the
        producer compresses it, in a one-record batch over the limit; None when it fits. The batch it goes
        in holds nothing else (``batch_size``), so the broker's verdict falls on this event alone."""
        limit = self.limits.get(topic)
        if limit is None or len(value) <= self.caps[topic]:
            return None
        compressed = len(lz4.frame.compress(value))
        if batch_bytes(compressed) <= limit:
            return None
        return (
            f"server configuration problem, not the event's: Kafka topic {topic} takes record batches of at "
            f"most {limit} bytes (max.message.bytes) and this event is {len(value)} bytes once stamped "
            f"({compressed} compressed); it is kept in the dead-letter topic, and a retry will be refused the "
            "same way until an operator raises the topic's max.message.bytes"
        )

    def batch_size(self, default: int = 1_000_000) -> int:
        """The producer's ``batch.size``: under the smallest limit known (librdkafka's default else)."""
        return min([default, *(max(1, n - FRAMING_BYTES) for n in self.limits.values())])

    def refresh_soon(self) -> None:
        self._wake.set()

    def start(self) -> TopicLimits:
        self.refresh(timeout=3.0)  # a broker away at start delays the gateway this much, once
        self._thread = threading.Thread(target=self._run, name="topic-limits", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            due = time.monotonic() + REFRESH_S
            while not self._wake.wait(1.0) and time.monotonic() < due:
                self._admin().poll(0)  # its log lines, between refreshes too
            self._wake.clear()
            if not self._stop.is_set():
                self.refresh()
            # refusals wake it, and batches of small events refused under a limit lowered since the start go
            # on being refused until a restart: one describe request per MIN_REFRESH_S, not back to back
            self._stop.wait(MIN_REFRESH_S)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)
