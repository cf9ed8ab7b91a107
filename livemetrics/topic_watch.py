"""What the group-less readers (the compacted topics' followers, the API's live feed, the gateway's ip-salts
reader: livemetrics/kafka_config.py ``reader_config``) cannot learn from their consumer: that their topic was
deleted and created again, or was given more partitions.

A reader assigns its partitions itself, so Kafka tells it nothing of either. librdkafka resets a position past a
new log's end to its start (``auto.offset.reset``), but a new log that grew past the reader's position before its
next fetch is read from that position on: everything before it is never read, and librdkafka says nothing
(confluentinc/librdkafka#3255). Partitions added to the topic were read only after a restart, and for the
ip-salts topic (records placed by key) a day's salt written there was never seen.

So each reader asks, at most every ``reader_topic_check_s``, for its topic's id (Kafka gives a topic a new one
when it is created) and partitions (``TopicWatch.look``): another id is a new log, which the reader reads from its
start; new partitions are read from their start. Each is a WARNING naming the reader and the topic, counted in
``livemetrics_topic_changes_total{reader,topic,change}``. A topic that cannot be described (away, deleted and not
created yet, no id on an old broker) changes nothing; it is asked again at the next period.

The watches of a process with the same admin config (broker and principal) ask through one admin client, counted
by its watches and let go (librdkafka destroys it) when the last of them is closed (``TopicWatch.close``, by its
reader as it stops): the API's five watches (the live feed's three topics, seller keys, channels) held five
librdkafka instances, each with its threads and connections. Kept for the process's life instead (0dc15cb), the
client outlived the broker it was made for (tests: each its own) and logged its failed connections to stderr.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import wait
from dataclasses import dataclass, field

from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient

from livemetrics import metrics
from livemetrics.kafka_config import admin_config
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.topic_watch")

RECREATED, PARTITIONS_ADDED = "recreated", "partitions_added"
# Admin clients given up on with a request in flight, never destroyed: librdkafka can abort on an admin client
# closed mid-request (confluentinc/librdkafka#3663). One per timed-out look at most.
_PARKED: list[AdminClient] = []
# The shared clients by admin config, and how many open watches use each config. A client is let go only when
# its count reaches 0: a watch asks only while open, and waits for its answer (or parks the client), so then no
# request of it is in flight (#3663).
_SHARED: dict[tuple[tuple[str, str], ...], AdminClient] = {}
_USERS: dict[tuple[tuple[str, str], ...], int] = {}
# The open watches themselves (``open_watches``): the tests fail one that leaves a watch of its readers open.
_OPEN: set[TopicWatch] = set()
_LOCK = threading.Lock()


def open_watches() -> set[tuple[str, str, int]]:
    """(reader, topic, id) of every watch of this process not closed yet."""
    with _LOCK:
        return {(w.reader, w.topic, id(w)) for w in _OPEN}


@dataclass(frozen=True)
class Change:
    """What changed since the last look: ``recreated`` (read every partition from its start) and/or partitions
    ``added`` (read them from their start); ``partitions``: all of them now."""

    recreated: bool
    partitions: list[int]
    added: list[int] = field(default_factory=list)


class TopicWatch:
    """One reader's watch over one topic, closed by its reader when it stops (``close``). Not thread-safe: used
    by the reader's own thread (the admin client it shares is)."""

    def __init__(self, settings: Settings, topic: str, reader: str, period_s: float | None = None):
        self.settings = settings
        self.topic = topic
        self.reader = reader
        self.period_s = settings.reader_topic_check_s if period_s is None else period_s
        self._id: str | None = None
        self._partitions: set[int] = set()
        self._next = 0.0
        self._config = admin_config(settings)
        self._key = tuple(sorted((k, str(v)) for k, v in self._config.items()))
        self._open = True
        with _LOCK:
            _USERS[self._key] = _USERS.get(self._key, 0) + 1
            _OPEN.add(self)

    def close(self) -> None:
        """Done with the watch (its reader stops): the admin client is let go with the last watch using it."""
        if not self._open:
            return
        self._open = False
        dropped = None
        with _LOCK:
            _OPEN.discard(self)
            _USERS[self._key] -= 1
            if _USERS[self._key] == 0:
                del _USERS[self._key]
                dropped = _SHARED.pop(self._key, None)
        del dropped  # the last reference: librdkafka destroys the client here, outside the lock

    def _admin(self) -> AdminClient:
        with _LOCK:
            admin = _SHARED.get(self._key)
            if admin is None:
                admin = _SHARED[self._key] = AdminClient(self._config)
            return admin

    def _describe(self, timeout_s: float) -> tuple[str | None, list[int]] | None:
        """The topic's id (None: none given) and partitions, or None when it could not be described."""
        if not self._open:
            raise RuntimeError(f"{self.reader}: the watch of {self.topic} was closed")
        admin = self._admin()
        future = admin.describe_topics(TopicCollection([self.topic]), request_timeout=timeout_s)[self.topic]
        wait([future], timeout_s + 1)
        if not future.done():
            with _LOCK:  # its request still in flight: kept for the process's life, the next look makes a new one
                if _SHARED.get(self._key) is admin:
                    del _SHARED[self._key]
                    _PARKED.append(admin)
            return None
        try:
            desc = future.result(timeout=0)
        except Exception:  # noqa: BLE001 - away, deleted, not authorized: asked again at the next period
            return None
        topic_id = str(desc.topic_id)
        known = topic_id if topic_id and topic_id.strip("0-") and topic_id != "None" else None  # zero id: none
        return known, sorted(p.id for p in desc.partitions)

    def remember(self, partitions: list[int], timeout_s: float = 5.0) -> None:
        """Note the topic as the reader is about to assign it (its id read before the assignment, so that a
        recreation in between shows at the next look)."""
        self._partitions = set(partitions)
        described = self._describe(timeout_s)
        if described is not None:
            self._id = described[0]
            self._partitions |= set(described[1])
        self._next = time.monotonic() + self.period_s

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def look(self, timeout_s: float = 5.0) -> Change | None:
        """Ask Kafka (call when ``due``): what changed since the last look, or None."""
        self._next = time.monotonic() + self.period_s
        described = self._describe(timeout_s)
        if described is None:
            return None
        topic_id, partitions = described
        if not partitions:
            return None
        recreated = topic_id is not None and self._id is not None and topic_id != self._id
        added = sorted(set(partitions) - self._partitions)
        if topic_id is not None:
            self._id = topic_id
        if recreated:
            self._partitions = set(partitions)
            log.warning(
                "%s: topic %s was created again (topic id %s): reading its %d partitions from their start",
                self.reader,
                self.topic,
                topic_id,
                len(partitions),
            )
            metrics.TOPIC_CHANGES.labels(self.reader, self.topic, RECREATED).inc()
            return Change(True, partitions)
        if added:
            self._partitions |= set(added)
            log.warning(
                "%s: topic %s has %d new partitions (%s): reading them from their start",
                self.reader,
                self.topic,
                len(added),
                ",".join(map(str, added)),
            )
            metrics.TOPIC_CHANGES.labels(self.reader, self.topic, PARTITIONS_ADDED).inc()
            return Change(False, partitions, added)
        return None
