"""Writes a Faust table's rows the way Faust would, without Faust's per-message Python producer path.

``Table.__setitem__`` costs a RocksDB put, a persisted-offset put and one message through Faust's
producer buffer and aiokafka (all Python-level) per key. With a million sessions nearly every event
is a new key, so that is the worker's ceiling. ``DirectChangelog.write`` instead puts a batch of rows
into the table's local store in one RocksDB ``WriteBatch`` and hands the same key / value bytes to a
confluent-kafka producer (C-level) for the *same changelog topic and partition* Faust uses (table
changelog partition = source partition), so Faust's recovery, which replays that topic into the
store, restores them exactly as if Faust had sent them. A deletion is a tombstone (value ``None``),
as ``Table.on_key_del`` sends.

What we rely on in Faust 0.15 (``faust/tables/base.py``, ``faust/stores/rocksdb.py``,
``faust/transport/consumer.py``):
- keys and values are raw bytes (``key_serializer="raw"``, ``value_serializer="raw"``), so the bytes
  on the topic are the bytes in the store;
- recovery reads each active changelog partition from the store's persisted offset + 1 to the high
  water mark (``Store.persisted_offset``, the ``__faust\\0offset__`` key of each partition's RocksDB).
  ``flush`` sets it, once per partition, to the highest offset delivered, exactly what Faust's
  ``_on_changelog_sent`` sets per message. Every delivered message's row was in the local store
  before it was produced, so everything up to that offset is in the store; a persisted offset that
  lags only makes recovery replay more (idempotent);
- offsets are committed only in ``Consumer._commit_offsets``, which calls ``Consumer._commit``;
  ``install_commit_hook`` (through ``streams/faust_internals.py``, like every Faust private) makes that wait until every row handed to the producer is acknowledged
  (acks=all, idempotent producer: in order per partition), and fail (so nothing is committed and the
  events are processed again) if any delivery failed. At-least-once holds: a committed event's rows
  are in the changelog.
- on revocation the owner flushes before the partition is handed over, so none of its rows can land
  after the next owner's.

Broker outages. The producer holds rows for ``broker_outage_tolerance_s`` (``message.timeout.ms``), not
the gateway's few seconds: a row that timed out would be a row lost from the changelog while the store
has it, and the worker had to exit (docs/operations.md, Broker outages). Within the tolerance the rows wait in the producer's
queue, commits wait for them, and everything goes out once the broker is back; past it the worker
exits with a message that says the broker was away too long.

A full queue (``worker_changelog_queue_rows`` unacknowledged rows: e.g. minutes of a changelog partition
without a leader while the raw topics are still read) never blocks the event loop. ``write`` hands the producer what fits
and keeps the rest, in order, per partition; a later write to that partition goes behind them (the changelog
keeps each partition's write order, which recovery relies on). ``room`` waits for them with the loop running:
the sessions agent awaits it after each batch, so it reads nothing more meanwhile (backpressure), and the
loop's heartbeat, /healthz, timers and revocations go on. Waiting rows count as produced: a flush (the
commit hook, a revocation) hands them over and waits for their delivery too. Before, ``write`` retried
``produce`` in a blocking ``poll(0.01)`` loop for as long as the queue stayed full: the loop stopped, /healthz
said stuck and the loop watchdog ended the worker (exit 70) during a broker outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from faust.types import TP

from streams import faust_internals

log = logging.getLogger("livemetrics.worker")

ROOM_POLL_S = 0.005  # how often a wait for room in the producer's queue serves delivery reports
FULL_WARN_S = 1.0  # a wait for room that lasts longer is logged (a short one is the queue working, under load)


class ChangelogDeliveryError(RuntimeError):
    """A changelog row could not be delivered: offsets must not be committed."""


class DirectChangelog:
    def __init__(self, table: Any, settings: Any):
        self.table, self.settings = table, settings
        self._producer: Producer | None = None
        self._topic = ""  # the table's changelog topic, known once the producer is made
        self._delivered: dict[int, int] = {}  # changelog partition -> highest offset acknowledged
        self._errors: list[str] = []
        self._produced: dict[int, int] = {}  # rows produced per changelog partition
        self._done: dict[int, int] = {}  # delivery reports (success or failure) per partition
        # Rows written locally for which the producer's queue had no room yet, in order per partition.
        self._waiting: dict[int, deque[tuple[bytes, bytes | None]]] = {}
        self._waiting_rows = 0
        self._full_since: float | None = None  # time.monotonic() when the queue was first found full
        self._warned = False  # the wait for room was logged (it lasted over FULL_WARN_S)

    # -- producer ------------------------------------------------------------------------------
    @property
    def producer(self) -> Producer:
        if self._producer is None:
            from livemetrics.kafka_config import changelog_producer_config

            # Rows wait out a broker outage up to the tolerance instead of timing out (see above).
            timeout_ms = int(self.settings.broker_outage_tolerance_s * 1000)
            # A broker back from an outage is found within a second (librdkafka's default backoff grows to 10 s).
            self._producer = Producer(
                changelog_producer_config(
                    self.settings, **{"message.timeout.ms": timeout_ms, "reconnect.backoff.max.ms": 1000}
                )
            )
            self._topic = self.table.changelog_topic_name
        return self._producer

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        p: int = msg.partition()  # type: ignore[assignment]  # a report always has it (no cast() per row)
        self._done[p] = self._done.get(p, 0) + 1
        if err is not None:
            self._errors.append(str(err))
            return
        off: int = msg.offset()  # type: ignore[assignment]  # set on every successful delivery
        if off > self._delivered.get(p, -1):
            self._delivered[p] = off

    # -- writes --------------------------------------------------------------------------------
    def write(self, partition: int, rows: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Put ``rows`` (value ``None`` deletes) into the local store of ``partition`` and produce them,
        in this order, to the same changelog partition. Never waits: rows the producer's queue has no
        room for wait in order behind the partition's earlier ones (``room`` hands them over)."""
        rows = list(rows)
        if not rows:
            return
        self._apply_local(partition, rows)
        producer = self.producer
        self._produced[partition] = self._produced.get(partition, 0) + len(rows)
        waiting = self._waiting.get(partition)
        if waiting:  # earlier rows of this partition still wait for room: these go behind them
            waiting.extend(rows)
            self._waiting_rows += len(rows)
        else:
            topic, cb, produce = self._topic, self._on_delivery, producer.produce
            it = iter(rows)
            for key, value in it:
                try:
                    produce(topic, value, key, partition, on_delivery=cb)
                except BufferError:  # the local queue is full (the broker is away or slow): wait, in order
                    rest = deque([(key, value)])
                    rest.extend(it)
                    self._waiting[partition] = rest
                    self._waiting_rows += len(rest)
                    if self._full_since is None:
                        self._full_since = time.monotonic()
                    break
                except BaseException:  # not produced, this row and the rest: no delivery report will come
                    self._produced[partition] -= 1 + sum(1 for _ in it)
                    raise
        producer.poll(0)

    def _hand_over(self) -> int:
        """Serve delivery reports, then move waiting rows into the producer's queue, in order per partition,
        as far as it has room. Returns the rows still waiting."""
        if not self._waiting_rows:
            return 0
        producer, topic, cb = self.producer, self._topic, self._on_delivery
        producer.poll(0)
        produce = producer.produce
        for partition, waiting in list(self._waiting.items()):
            while waiting:
                key, value = waiting[0]
                try:
                    produce(topic, value, key, partition, on_delivery=cb)
                except BufferError:
                    return self._waiting_rows
                except Exception as exc:  # noqa: BLE001 - refused for good: like a failed delivery, no commit past it
                    self._produced[partition] -= 1
                    self._errors.append(f"row not produced: {exc}")
                waiting.popleft()
                self._waiting_rows -= 1
            del self._waiting[partition]
        if self._full_since is not None:
            waited = time.monotonic() - self._full_since
            if self._warned:
                log.info(
                    "changelog producer queue has room again after %.1f s: the sessions agent reads on",
                    waited,
                    extra={"waited_s": round(waited, 1)},
                )
            self._full_since, self._warned = None, False
        return 0

    def waiting(self) -> int:
        """Rows written locally that wait for room in the producer's queue."""
        return self._waiting_rows

    def waiting_s(self) -> float:
        """How long rows have been waiting for room (0: none is)."""
        since = self._full_since
        return 0.0 if since is None or not self._waiting_rows else time.monotonic() - since

    async def room(self) -> None:
        """Wait, with the event loop running, until every row written so far is in the producer's queue.
        The sessions agent awaits this after each batch: while the broker is away it reads nothing more
        (backpressure), and the loop goes on (heartbeat, /healthz, timers, the revocation handler)."""
        while waiting := self._hand_over():
            if not self._warned and self._full_since is not None and time.monotonic() - self._full_since > FULL_WARN_S:
                self._warned = True
                log.warning(
                    "changelog producer queue full for %.0f s (%d rows unacknowledged, %d of them waiting for room; "
                    "is the broker at %s away?): the sessions agent reads nothing more until there is room",
                    time.monotonic() - self._full_since,
                    self.pending(),
                    waiting,
                    self.settings.kafka_bootstrap,
                    extra={"changelog_unacknowledged": self.pending(), "changelog_waiting": waiting},
                )
            await asyncio.sleep(ROOM_POLL_S)

    def _apply_local(self, partition: int, rows: list[tuple[bytes, bytes | None]]) -> None:
        store = self.table.data
        db = faust_internals.partition_db(store, partition)
        if db is not None:  # RocksDB: one atomic write per batch
            import rocksdict

            wb = rocksdict.WriteBatch(raw_mode=True)
            for key, value in rows:
                if value is None:
                    wb.delete(key)
                else:
                    wb.put(key, value)
            db.write(wb)
        else:  # memory store (tests): a plain dict
            data = store.data
            for key, value in rows:
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value

    def getter(self, partition: int) -> Callable[[bytes], bytes | None]:
        """A function key -> value bytes or None, reading the local store of ``partition`` once."""
        db = faust_internals.partition_db(self.table.data, partition)
        get: Callable[[bytes], bytes | None] = db.get if db is not None else self.table.data.data.get
        return get

    # -- durability ----------------------------------------------------------------------------
    def pending(self) -> int:
        """Rows written and not yet reported on by the producer: in its queue or waiting for room in it.
        (Also read by /metrics from another thread: a copy of the counts, never the dicts being changed.)"""
        return self._behind(dict(self._produced))

    def _check(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise ChangelogDeliveryError(
                f"{len(errors)} changelog rows not delivered within broker_outage_tolerance_s="
                f"{self.settings.broker_outage_tolerance_s:g} s (is the broker at {self.settings.kafka_bootstrap} "
                f"down?), e.g. {errors[0]}; nothing was committed for them: a restart processes them again"
            )

    def _persist_offsets(self) -> None:
        store = self.table.data
        if not self._delivered or not hasattr(store, "set_persisted_offset"):
            return
        delivered, self._delivered = self._delivered, {}
        for p, off in delivered.items():
            try:
                store.set_persisted_offset(TP(self._topic, p), off)
            except Exception:  # noqa: BLE001 - a partition that moved away: recovery replays more
                pass

    def _behind(self, target: dict[int, int]) -> int:
        return sum(max(0, n - self._done.get(p, 0)) for p, n in target.items())

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every row produced so far has its delivery report (rows produced meanwhile are
        not waited for: reports come in order per partition); raise if any failed; record the
        delivered offsets as the store's persisted offsets."""
        if self._producer is None:
            return
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        p, target = self._producer, dict(self._produced)
        p.poll(0)
        self._hand_over()
        while self._behind(target):
            if deadline is not None and loop.time() > deadline:
                raise ChangelogDeliveryError(
                    f"{self._behind(target)} changelog rows still in flight after {timeout:g} s (is the broker at "
                    f"{self.settings.kafka_bootstrap} down?)"
                )
            await asyncio.sleep(0.002)
            p.poll(0)
            self._hand_over()
        self._check()
        self._persist_offsets()

    def poll(self) -> None:
        if self._producer is not None:
            self._producer.poll(0)
            self._hand_over()
            self._check()

    def install_commit_hook(self, app: Any) -> None:
        """Make every offset commit of ``app``'s consumer wait for the rows produced so far."""
        faust_internals.hook_commit(app.consumer, self.flush)

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is None:
            return
        deadline = time.monotonic() + timeout
        while self._hand_over() and time.monotonic() < deadline:  # at shutdown: no loop to keep running
            self._producer.flush(min(0.1, max(0.0, deadline - time.monotonic())))
        self._producer.flush(max(0.0, deadline - time.monotonic()))
