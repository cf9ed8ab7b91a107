"""The ClickHouse sink: raw topics -> ``events``, ``payment-alerts`` -> ``payment_errors``, in batches by
size or time. Raw events go to ClickHouse as JSON lines that it parses itself (``events_json``); alerts
are decoded here and inserted as Arrow.

Durability and idempotence:
- offsets are committed to Kafka only after ClickHouse acknowledged the insert;
- each row carries its Kafka topic/partition/offset, and on (re)assignment the sink resumes after the
  highest offset already stored, so a crash between insert and commit neither loses nor repeats rows;
- each insert carries an ``insert_deduplication_token`` made from its offset ranges, so a retried insert
  of the same batch is dropped by ClickHouse (the tables, rollups included, have a dedup window).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

import msgspec
from clickhouse_connect.driver.exceptions import DatabaseError
from confluent_kafka import Consumer, TopicPartition

from clickhouse.client import EVENTS_INSERT_SETTINGS, INSERT_SETTINGS, get_client
from clickhouse.columns import alerts_table
from clickhouse.events_json import insert_events, position, renumber, unusable
from clickhouse.sink_batch import Batch
from clickhouse.session_fold import SessionFolder
from livemetrics import metrics
from livemetrics.kafka_config import consumer_config
from livemetrics.settings import RAW_TOPICS, Settings

log = logging.getLogger("livemetrics.sink")


class EventSink:
    def __init__(self, settings: Settings, group_id: str | None = None):
        self.settings = settings
        self.client = get_client(settings)
        self.db = settings.clickhouse_database
        self.table = f"{self.db}.events"
        self.alerts_topic = settings.topic("payment-alerts")
        self.topics = [settings.topic(t) for t in RAW_TOPICS] + [self.alerts_topic]
        # big fetches: with the default 1 MB per partition, consuming took longer than inserting
        fetch = {"fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20}
        self.consumer = Consumer(consumer_config(settings, group_id or settings.sink_group, **fetch))
        self._buf = Batch(self.alerts_topic)  # consumed, not inserted yet
        self._retry: Batch | None = None  # a batch whose insert failed
        self._buf_lock = threading.Lock()  # the buffer: the loop appends, flush() takes
        self._insert_lock = threading.Lock()  # one insert at a time, in the order the batches were taken
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.folder = SessionFolder(settings)  # folds session rows into session_sums (docs/clickhouse.md)
        self.rows_written = 0

    # --- assignment: resume after what ClickHouse already has ----------------------------------
    def _stored_offsets(self) -> dict[tuple[str, int], int]:
        rows = self.client.query(
            f"SELECT kafka_topic, kafka_partition, max(max_offset) FROM {self.db}.sink_offsets "
            "WHERE kafka_topic IN {topics:Array(String)} GROUP BY kafka_topic, kafka_partition",
            parameters={"topics": self.topics},
        ).result_rows
        return {(t, int(p)): int(o) for t, p, o in rows}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self._stored_offsets()
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=10)}
        for tp in partitions:
            have = stored.get((tp.topic, tp.partition))
            if have is not None and have + 1 > committed.get((tp.topic, tp.partition), -1):
                tp.offset = have + 1
        consumer.assign(partitions)

    # --- the loop ------------------------------------------------------------------------------
    def start(self) -> "EventSink":
        self.consumer.subscribe(self.topics, on_assign=self._on_assign)
        self._thread = threading.Thread(target=self._run, name="clickhouse-sink", daemon=True)
        self._thread.start()
        self.folder.start()
        return self

    def _run(self) -> None:
        # While one batch is inserted (ClickHouse works without the GIL), the loop consumes the next;
        # a due batch waits for the one in flight, so batches are inserted and committed in order.
        inserter = ThreadPoolExecutor(1, thread_name_prefix="clickhouse-sink-insert")
        inflight: Future | None = None
        while not self._stop.is_set():
            try:
                self._consume(0.2)
                if self._due():
                    if inflight is not None:
                        done, inflight = inflight, None
                        done.result()  # a failed batch stays as _retry and goes first
                    inflight = inserter.submit(self.flush)
            except Exception:  # noqa: BLE001 - keep the sink alive; the batch is retried
                log.exception("sink batch failed; retrying in 1 s")
                time.sleep(1)
        if inflight is not None:
            wait([inflight])
        inserter.shutdown()
        self.flush()
        self.consumer.close()

    def poll_once(self, timeout: float = 0.2) -> None:
        """Consume once; insert (in this thread) when the buffer is due."""
        self._consume(timeout)
        if self._due():
            self.flush()

    def _consume(self, timeout: float) -> None:
        # No cyclic GC while 10,000 Message objects are made and turned into lines: collections in
        # between would promote them to the old generations and trigger full collections over
        # everything the process holds (15-25 % of the sink's CPU). They are freed by refcount.
        gc_was = gc.isenabled()
        gc.disable()
        try:
            msgs = self.consumer.consume(num_messages=min(10_000, self.settings.sink_batch_rows), timeout=timeout)
            with self._buf_lock:
                self._buf.add(msgs)
            del msgs
        finally:
            if gc_was:
                gc.enable()

    def _due(self) -> bool:
        return bool(self._retry or self._buf and (
            len(self._buf) >= self.settings.sink_batch_rows
            or time.monotonic() - self._buf.first_at >= self.settings.sink_batch_seconds
        ))

    def flush(self) -> int:
        """Insert everything buffered, then commit its offsets; return the rows written."""
        with self._insert_lock:
            # A batch ClickHouse did not acknowledge is retried alone, so that it gets the same token.
            batch, self._retry = self._retry, None
            if not batch:
                with self._buf_lock:
                    batch, self._buf = self._buf, Batch(self.alerts_topic)
            if not batch:
                return 0
            try:
                rows = self._insert(batch)
            except Exception:
                self._retry = batch
                raise
            self.rows_written += rows
        return rows

    def _insert(self, batch: Batch) -> int:
        token = batch.token()
        rows = 0
        if batch.heads:
            rows += self._insert_events(batch.heads, batch.values, {**EVENTS_INSERT_SETTINGS, "insert_deduplication_token": token})
        if batch.alerts:
            table = self._alerts_table(batch.alerts)
            if table.num_rows:
                settings = {**INSERT_SETTINGS, "insert_deduplication_token": token + "-alerts"}
                self.client.insert_arrow(f"{self.db}.payment_errors", table, settings=settings)
                metrics.SINK_ROWS.labels("payment_errors").inc(table.num_rows)
                rows += table.num_rows
        self.consumer.commit(offsets=batch.commit_offsets(), asynchronous=False)
        return rows

    def _insert_events(self, heads: list[bytes], values: list[bytes], settings: dict) -> int:
        embedded = self.settings.clickhouse_embedded
        try:
            insert_events(self.client, self.db, heads, values, settings, embedded)
        except DatabaseError:
            # Refused as a whole, nothing was written. If some values are not events, skip those and
            # insert the rest under the same token; otherwise the failure is not the data's: retry later.
            bad = set(unusable(values))
            if not bad:
                raise
            for i in sorted(bad):
                log.warning("undecodable event at %s skipped", position(heads[i]))
            heads = renumber([h for i, h in enumerate(heads) if i not in bad])
            values = [v for i, v in enumerate(values) if i not in bad]
            if heads:
                insert_events(self.client, self.db, heads, values, settings, embedded)
        metrics.SINK_ROWS.labels("events").inc(len(heads))
        return len(heads)

    @staticmethod
    def _alerts_table(msgs: list):
        alerts, kept = [], []
        for m in msgs:
            try:
                a = msgspec.json.decode(m.value())
            except msgspec.DecodeError:
                a = None
            if not isinstance(a, dict) or not a.get("alert_id") or not a.get("seller_id"):
                log.warning("unusable alert at %s[%s]@%s skipped", m.topic(), m.partition(), m.offset())
                continue
            alerts.append(a)
            kept.append(m)
        return alerts_table(alerts, [m.topic() for m in kept], [m.partition() for m in kept], [m.offset() for m in kept])

    def stop(self) -> None:
        """Stop consuming; what is buffered is flushed first (shutdown never loses a batch)."""
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        self.folder.stop()
