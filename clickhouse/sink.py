"""The ClickHouse sink: raw topics -> ``events``, ``payment-alerts`` -> ``payment_errors``, in batches by
size or time, decoded into columns and inserted as Arrow.

Durability and idempotence:
- offsets are committed to Kafka only after ClickHouse acknowledged the insert;
- each row carries its Kafka topic/partition/offset, and on (re)assignment the sink resumes after the
  highest offset already stored, so a crash between insert and commit neither loses nor repeats rows;
- each insert carries an ``insert_deduplication_token`` made from its offset ranges, so a retried insert
  of the same batch is dropped by ClickHouse (the tables, rollups included, have a dedup window).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from collections import defaultdict

import msgspec
from confluent_kafka import Consumer, KafkaError, TopicPartition

from clickhouse.client import INSERT_SETTINGS, get_client
from clickhouse.columns import alerts_table, decode_events, events_table
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
        self.consumer = Consumer(consumer_config(settings, group_id or settings.sink_group, **{"fetch.max.bytes": 64 << 20}))
        self._buf: list = []  # confluent Message objects not yet inserted
        self._retry: list | None = None  # a batch whose insert failed
        self._first_at = 0.0
        self._lock = threading.Lock()
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
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - keep the sink alive; the batch is retried
                log.exception("sink batch failed; retrying in 1 s")
                time.sleep(1)
        self.flush()
        self.consumer.close()

    def poll_once(self, timeout: float = 0.2) -> None:
        msgs = self.consumer.consume(num_messages=min(10_000, self.settings.sink_batch_rows), timeout=timeout)
        with self._lock:
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("kafka: %s", err)
                    continue
                if not self._buf:
                    self._first_at = time.monotonic()
                self._buf.append(m)
        due = self._retry or self._buf and (
            len(self._buf) >= self.settings.sink_batch_rows
            or time.monotonic() - self._first_at >= self.settings.sink_batch_seconds
        )
        if due:
            self.flush()

    def flush(self) -> int:
        """Insert everything buffered, then commit its offsets; return the rows written."""
        with self._lock:
            # A batch ClickHouse did not acknowledge is retried alone, so that it gets the same token.
            batch, self._retry = self._retry, None
            if not batch:
                batch, self._buf = self._buf, []
            if not batch:
                return 0
            try:
                rows = self._insert(batch)
            except Exception:
                self._retry = batch
                raise
        self.rows_written += rows
        return rows

    def _insert(self, batch: list) -> int:
        ranges: dict[tuple[str, int], list[int]] = defaultdict(lambda: [1 << 62, -1])
        raw, alerts = [], []
        for m in batch:
            r = ranges[(m.topic(), m.partition())]
            r[0] = min(r[0], m.offset())
            r[1] = max(r[1], m.offset())
            (alerts if m.topic() == self.alerts_topic else raw).append(m)
        token = hashlib.sha1(
            ",".join(f"{t}/{p}:{a}-{b}" for (t, p), (a, b) in sorted(ranges.items())).encode()
        ).hexdigest()
        settings = {**INSERT_SETTINGS, "insert_deduplication_token": token}
        rows = 0
        gc_was = gc.isenabled()
        gc.disable()  # building 50k-row columns allocates millions of objects; collections would dominate
        try:
            if raw:
                table = self._events_table(raw)
                if table.num_rows:
                    self.client.insert_arrow(self.table, table, settings=settings)
                    metrics.SINK_ROWS.labels("events").inc(table.num_rows)
                    rows += table.num_rows
            if alerts:
                table = self._alerts_table(alerts)
                if table.num_rows:
                    self.client.insert_arrow(f"{self.db}.payment_errors", table, settings={**settings, "insert_deduplication_token": token + "-alerts"})
                    metrics.SINK_ROWS.labels("payment_errors").inc(table.num_rows)
                    rows += table.num_rows
        finally:
            if gc_was:
                gc.enable()
        self.consumer.commit(
            offsets=[TopicPartition(t, p, b + 1) for (t, p), (_, b) in ranges.items()], asynchronous=False
        )
        return rows

    @staticmethod
    def _events_table(msgs: list):
        events, bad = decode_events([m.value() for m in msgs])
        if bad:
            for i in bad:
                log.warning("undecodable event at %s[%s]@%s skipped", msgs[i].topic(), msgs[i].partition(), msgs[i].offset())
            skip = set(bad)
            msgs = [m for i, m in enumerate(msgs) if i not in skip]
        return events_table(events, [m.topic() for m in msgs], [m.partition() for m in msgs], [m.offset() for m in msgs])

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
