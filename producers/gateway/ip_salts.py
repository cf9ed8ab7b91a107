"""The daily salt of visitors' IP hashes: random, shared by every gateway process, destroyed after the day.

A salt derived from (secret, date) lets anyone who has the secret hash all 2^32 IPv4 addresses for any
past day and reverse every stored hash. Instead each UTC day gets 32 random bytes, written to the
compacted topic ``ip-salts`` by the first gateway process that needs it (keyed ``<date>/<writer id>``), and
every process uses the day's *earliest* record in the partition, so processes that raced to write one
still agree. Days before yesterday get a tombstone per record, and the topic's settings let the broker's
log cleaner remove the salts and then the tombstones (livemetrics/topics.py ``ip_salts_config``): after
that no copy of the salt is left in Kafka or in a gateway's memory, and the day's hashes can no longer be
recomputed from an IP address (docs/security.md, Client IP hashes). Tomorrow's salt is written a day
ahead, so midnight needs no round trip to Kafka on the hot path.

The hash key is HMAC(ip_hash_secret, salt): the topic alone is not enough to compute today's hashes either.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from livemetrics.kafka_config import producer_config, reader_config
from livemetrics.settings import Settings
from livemetrics.topic_watch import TopicWatch

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
SALT_BYTES = 32


class DaySalts(Protocol):
    def day_key(self, day: int) -> bytes:
        """The hash key of a UTC day (days since the epoch)."""


def day_name(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


def day_number(name: str) -> int:
    return int(datetime.strptime(name, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) // 86_400


def hash_key(secret: str, salt: bytes) -> bytes:
    return hmac.new(secret.encode(), salt, hashlib.sha256).digest()


class LocalSalts:
    """A random salt per day known to this process only, forgotten after the next day: where no gateway
    replica needs to agree (tests, tools), and the fallback while the shared salt cannot be read."""

    def __init__(self, secret: str = ""):
        self.secret = secret
        self._keys: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def day_key(self, day: int) -> bytes:
        key = self._keys.get(day)
        if key is None:
            with self._lock:
                key = self._keys.get(day)
                if key is None:
                    for old in [d for d in self._keys if d < day - 1]:
                        del self._keys[old]
                    key = self._keys[day] = hash_key(self.secret, os.urandom(SALT_BYTES))
        return key


class SharedSalts:
    """Today's and tomorrow's salts from the ``ip-salts`` topic, kept current by a background thread.
    ``clock`` (epoch seconds) is injectable so that a test can move through days."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time, tend_interval_s: float = 30.0):
        self.settings = settings
        self.clock = clock
        self.tend_interval_s = tend_interval_s
        self.secret = settings.ip_hash_secret.get_secret_value()
        self.topic = settings.topic("ip-salts")
        self.writer_id = uuid.uuid4().hex[:12]
        self._records: dict[int, list[tuple[str, bytes]]] = {}  # day -> (key, salt) in partition order
        self._keys: dict[int, bytes] = {}  # day -> hash key of its earliest salt (read without a lock)
        self._written: set[int] = set()
        self._tombstoned: set[str] = set()
        self._fallback = LocalSalts(self.secret)
        self._warned: set[int] = set()
        self._caught_up = False  # read to the end once: every salt written before start is known
        self._stop = threading.Event()
        self._today_known = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the hot path ----------------------------------------------------------------------------
    def day_key(self, day: int) -> bytes:
        key = self._keys.get(day)
        if key is not None:
            return key
        if day not in self._warned:
            self._warned.add(day)
            log.error(
                "no shared IP-hash salt for %s (topic %s not read yet or unreachable): this process "
                "hashes with a salt of its own until it has one",
                day_name(day),
                self.topic,
            )
        return self._fallback.day_key(day)

    @property
    def ready(self) -> bool:
        return self._caught_up and int(self.clock() * 1000) // DAY_MS in self._keys

    def salt_of(self, day: int) -> bytes | None:
        """The shared salt of a day, if known (tests compare processes with it)."""
        records = self._records.get(day)
        return records[0][1] if records else None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, wait_s: float = 10.0) -> SharedSalts:
        self._thread = threading.Thread(target=self._run, name="ip-salts", daemon=True)
        self._thread.start()
        self._today_known.wait(wait_s)
        return self

    def wait_ready(self, timeout: float) -> bool:
        """Whether today's shared salt is known, waiting up to ``timeout`` seconds for it."""
        return self._today_known.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        consumer = Consumer(
            reader_config(self.settings)  # a recreated topic's new log read from its start
        )
        producer = Producer(producer_config(self.settings))
        # Every partition (the topic is created with one, but a salt is placed by its key: one written to a
        # partition added later was never read); a new log or new partitions read from their start (TopicWatch)
        watch = TopicWatch(self.settings, self.topic, "ip-salts")
        try:
            parts: list[int] = []
            while not self._stop.is_set():  # the topic is created by `kafka topics` / `up`; wait for it
                try:
                    md = consumer.list_topics(self.topic, timeout=5)
                    if self.topic in md.topics and not md.topics[self.topic].error:
                        parts = sorted(md.topics[self.topic].partitions)
                        if parts:
                            break
                except Exception:  # noqa: BLE001 - broker not up yet; keep trying
                    pass
                self._stop.wait(0.5)
            watch.remember(parts)
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts])
            eof: set[int] = set()
            next_tend = 0.0
            while not self._stop.is_set():
                if watch.due() and (change := watch.look()) is not None:
                    parts = change.partitions
                    if change.recreated:
                        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts])
                    else:
                        consumer.incremental_assign(
                            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in change.added]
                        )
                msg = consumer.poll(0.2)
                if msg is not None:
                    if not msg.error():
                        self._take(msg)
                    elif msg.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(msg.partition() or 0)
                        # every record written before now is known: safe to decide
                        self._caught_up = self._caught_up or eof >= set(parts)
                        if self.ready:
                            self._today_known.set()
                if self._caught_up and time.monotonic() >= next_tend:
                    self._tend(producer)
                    next_tend = time.monotonic() + self.tend_interval_s
        finally:
            watch.close()
            producer.flush(5)
            consumer.close()

    def _take(self, msg: Message) -> None:
        """Apply a record; one that is no salt (a key not UTF-8 or naming no day) is skipped and logged: before,
        it ended this thread, and no new day's salt was known again (every gateway waiting for one unready)."""
        try:
            key = msg.key().decode()
            day_number(key.split("/", 1)[0])
        except (AttributeError, UnicodeDecodeError, ValueError) as exc:
            log.warning(
                "ip-salts: skipped the record at %s[%d]@%d, its key is no salt's (%s)",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                exc,
            )
            return
        self._apply(key, msg.value())

    def _apply(self, key: str, value: bytes | None) -> None:
        day = day_number(key.split("/", 1)[0])
        records = self._records.setdefault(day, [])
        if value is None:  # a tombstone: this salt is gone
            records[:] = [r for r in records if r[0] != key]
        elif len(value) == SALT_BYTES and all(r[0] != key for r in records):
            records.append((key, value))
        if records:
            self._keys[day] = hash_key(self.secret, records[0][1])
        else:
            self._records.pop(day, None)
            self._keys.pop(day, None)
        if self.ready:
            self._today_known.set()

    def _tend(self, producer: Producer) -> None:
        """Write a salt for today and tomorrow where none exists; tombstone every salt before yesterday."""
        today = int(self.clock() * 1000) // DAY_MS
        for day in (today, today + 1):
            if day not in self._records and day not in self._written:
                self._written.add(day)
                producer.produce(
                    self.topic,
                    # always the first partition: the first salt of a day in its log's order wins, the same one
                    # for every reader only within one partition (the topic may have been given more)
                    partition=0,
                    key=f"{day_name(day)}/{self.writer_id}".encode(),
                    value=os.urandom(SALT_BYTES),
                    on_delivery=self._delivered(day),
                )
        for day, records in list(self._records.items()):
            if day < today - 1:
                for key, _ in records:
                    if key not in self._tombstoned:
                        self._tombstoned.add(key)
                        producer.produce(self.topic, key=key.encode(), value=None)
        producer.flush(10)

    def _delivered(self, day: int):
        def done(err, _msg) -> None:
            if err is not None:  # try again at the next tend
                log.warning("could not write the IP-hash salt for %s: %s", day_name(day), err)
                self._written.discard(day)

        return done
