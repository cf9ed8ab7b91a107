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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from faust.types import TP

from streams import faust_internals


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
        in this order, to the same changelog partition."""
        rows = list(rows)
        if not rows:
            return
        self._apply_local(partition, rows)
        producer, topic, cb = self.producer, self._topic, self._on_delivery
        produce = producer.produce
        for key, value in rows:
            while True:
                try:
                    produce(topic, value, key, partition, on_delivery=cb)
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    producer.poll(0.01)
        self._produced[partition] = self._produced.get(partition, 0) + len(rows)
        producer.poll(0)

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
        return len(self._producer) if self._producer is not None else 0

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
        while self._behind(target):
            if deadline is not None and loop.time() > deadline:
                raise ChangelogDeliveryError(
                    f"{self._behind(target)} changelog rows still in flight after {timeout:g} s (is the broker at "
                    f"{self.settings.kafka_bootstrap} down?)"
                )
            await asyncio.sleep(0.002)
            p.poll(0)
        self._check()
        self._persist_offsets()

    def poll(self) -> None:
        if self._producer is not None:
            self._producer.poll(0)
            self._check()

    def install_commit_hook(self, app: Any) -> None:
        """Make every offset commit of ``app``'s consumer wait for the rows produced so far."""
        faust_internals.hook_commit(app.consumer, self.flush)

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.flush(timeout)
