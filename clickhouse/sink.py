"""The ClickHouse sink: raw topics -> ``events``, ``payment-alerts`` -> ``payment_errors``, in batches by
size or time. Raw events go to ClickHouse as JSON lines that it parses itself (``events_json``); alerts
are decoded here and inserted as Arrow.

Durability and idempotence:
- offsets are committed to Kafka only after ClickHouse acknowledged the insert;
- each row carries its Kafka topic/partition/offset, and on (re)assignment the sink resumes after the
  highest offset already stored, so a crash between insert and commit neither loses nor repeats rows;
- each insert carries an ``insert_deduplication_token`` made from its offset ranges, so a retried insert
  of the same batch is dropped by ClickHouse (the tables, rollups included, have a dedup window);
- when the group rebalances, the batch in flight is stored and committed first and what is only
  prepared or buffered is dropped (it is read again from after what is stored), so a rebalance
  duplicates nothing.

When an insert fails (``sink_errors.classify``): a transient failure (ClickHouse down, timeouts, too
many parts...) is waited out with a growing pause, the batch retried whole with its token, nothing
dropped; a refusal of the rows themselves (a bad value, too many partitions...) is narrowed down
(``sink_narrow``): every row ClickHouse accepts is stored, each one it refuses goes to the dead-letter
topic with ClickHouse's message (``sink_dead_letter``), and the sink moves on. Its lag and whether it is
stalled are in ``lag`` (``sink_lag``: /metrics, /readyz, the dashboard).

Hung or waiting: the sink's thread beats on every pass of its loop (``self.watch``, livemetrics/loop_watch.py)
and declares each honest wait (a ClickHouse insert or query, a synchronous Kafka commit, the pause before a
retry) with ``watch.waiting``. A sink waiting out an outage is therefore alive (/healthz 200 saying on what
it waits; /readyz stalled), while a thread blocked anywhere else for ``loop_stale_s`` makes /healthz 503
naming the sink, and after ``loop_stuck_exit_s`` the process exits with code 70, the thread's stack logged,
standalone and embedded in the API alike (a Python thread cannot be killed, and nothing else would store
history again: embedded chdb cannot be opened by another process). Its wait for the insert thread (and that
one's for the prepare thread) is ``watch.waiting_for`` that thread's watch (``sink_store``), and every step
handed to them counts until it is done (``watch.hand_over``): waiting on ClickHouse while the helper is
inside a ClickHouse call, stuck (naming the helper, its stack logged) when the helper is stuck in its own
code, whether or not the sink's thread is blocked on it yet. Nothing acknowledged is lost by the exit:
offsets are committed only after ClickHouse has the rows, and a batch stored again is dropped by its token.
An outage is logged once when it starts and once when it ends (``livemetrics/outage_log.py``).

Three threads: the sink's own consumes and commits (it owns the Kafka consumer), a second prepares the
next batch (embedded, ClickHouse parses it: ``events_json.prepare``) while a third inserts the batch
before it (both through ``sink_store.BatchStore``). Batches are inserted and committed one at a time, in
order.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from confluent_kafka import Consumer, KafkaException, TopicPartition

from clickhouse import events_json, sink_replay
from clickhouse.client import get_client
from clickhouse.session_fold import SessionFolder
from clickhouse.sink_batch import Batch
from clickhouse.sink_lag import LagWatch
from clickhouse.sink_logs import Finding, SinkLogs, judge, report, split_partitions
from clickhouse.sink_store import BatchStore
from livemetrics import metrics
from livemetrics.kafka_config import bulk_consumer_config
from livemetrics.loop_watch import LoopWatch
from livemetrics.outage_log import Outage, probe_kafka
from livemetrics.settings import RAW_TOPICS, Settings

log = logging.getLogger("livemetrics.sink")
# each assignment, with where each partition is read from and why (stored, committed): its own logger, as
# it is no outage line
assign_log = logging.getLogger("livemetrics.sink.assign")

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> offset
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 10.0  # the pause after a transient failure, doubled up to the max
KAFKA_PROBE_S = 1.0  # how often the broker is asked for metadata (its loss and return are logged once)


class EventSink:
    def __init__(self, settings: Settings, group_id: str | None = None):
        self.settings = settings
        self.db = settings.clickhouse_database
        self.table = f"{self.db}.events"
        self.alerts_topic = settings.topic("payment-alerts")
        self.topics = [settings.topic(t) for t in RAW_TOPICS] + [self.alerts_topic]
        # Big fetches (with the default 1 MB per partition, consuming took longer than inserting), few of them.
        self.consumer = Consumer(bulk_consumer_config(settings, group_id or settings.sink_group))
        self._buf = Batch(self.alerts_topic)  # consumed, not taken yet
        # taken, in order, each with its prepare step once started; the first one is next to insert (a
        # batch whose insert or commit failed goes back to the front: retried alone, with its token)
        self._queue: deque[list] = deque()  # [Batch, Future[Prepared] | None]
        self._inflight: tuple[Future, Batch] | None = None  # being inserted while the next is prepared
        self._preparer = ThreadPoolExecutor(1, thread_name_prefix="clickhouse-sink-prepare")
        self._inserter = ThreadPoolExecutor(1, thread_name_prefix="clickhouse-sink-insert")
        self._flush_requests: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self._resume: list[TopicPartition] = []  # stored past the group's offsets (see _on_assign)
        # offsets of batches ClickHouse has stored whose commit has not succeeded yet (a broker outage, a
        # coordinator moving): committed again before anything else, never stored again (see _settle)
        self._owed: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.folder = SessionFolder(settings)  # folds session rows into session_sums (docs/clickhouse.md)
        self.rows_written = 0
        self.store = BatchStore(settings)  # prepares and writes a batch (on the two other threads)
        self.dead_letters = self.store.dead_letters
        self.lag = LagWatch(settings)
        self.logs = SinkLogs(settings)  # whether stored offsets belong to the log assigned (sink_logs)
        self.lag.export()
        self.watch = LoopWatch(
            "sink", settings.loop_stale_s, settings.loop_stuck_exit_s, what="the ClickHouse sink's thread"
        )
        self.clickhouse = Outage(log, "sink", "ClickHouse")
        self.kafka = Outage(log, "sink", "Kafka")

    # --- assignment: resume after what ClickHouse already has ----------------------------------
    def _stored_offsets(self) -> dict[tuple[str, int], int]:
        with self.watch.waiting("ClickHouse"):
            rows = (
                get_client(self.settings)
                .query(
                    f"SELECT kafka_topic, kafka_partition, max(max_offset) FROM {self.db}.sink_offsets "
                    "WHERE kafka_topic IN {topics:Array(String)} GROUP BY kafka_topic, kafka_partition",
                    parameters={"topics": self.topics},
                )
                .result_rows
            )
        self.clickhouse.ok()
        return {(t, int(p)): int(o) for t, p, o in rows}

    def _stored_and_committed(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> tuple[Offsets, Offsets, dict[tuple[str, int], Finding], Offsets] | None:
        """What ClickHouse holds and what the group committed for these partitions, the partitions whose
        stored offsets do not fit their log (``sink_logs``: those offsets forgotten in ClickHouse, the topic
        ids recorded), and the last offsets of the batches stored again whole (``sink_replay``), asked again
        (the outage logged once) until all answer; None if the sink is asked to stop meanwhile."""
        pause = RETRY_FIRST_S
        found: dict[tuple[str, int], Finding] = {}  # kept across attempts: an attempt may forget, then fail
        while True:
            try:
                stored = self._stored_offsets()
                with self.watch.waiting("Kafka"):
                    listed = consumer.committed(partitions, timeout=10)
                    committed = {(tp.topic, tp.partition): tp.offset for tp in listed}
                    ids = self.logs.topic_ids(sorted({tp.topic for tp in partitions}))
                    marks = {
                        (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10, cached=False)
                        for tp in partitions
                        if (tp.topic, tp.partition) in stored
                    }
                self.kafka.ok()
                with self.watch.waiting("ClickHouse"):
                    recorded = self.logs.recorded(self.topics)
                    for tp in partitions:
                        key = (tp.topic, tp.partition)
                        if key in marks and key not in found:
                            low, high = marks[key]
                            f = judge(
                                tp, stored[key], committed.get(key, -1), low, high, recorded.get(key), ids.get(tp.topic)
                            )
                            if f is not None:
                                found[key] = f
                    self.logs.forget([f for f in found.values() if f.forgets])  # before the new ids: see sink_logs
                    self.logs.record(
                        {
                            (tp.topic, tp.partition): ids[tp.topic]
                            for tp in partitions
                            if tp.topic in ids and recorded.get((tp.topic, tp.partition)) != ids[tp.topic]
                        }
                    )
                    # a batch half stored when its process died, stored again whole (idempotent: its token)
                    replayed = sink_replay.replay_unstored(
                        self.settings, self.store, self.topics, self.alerts_topic, stored, found, self._stop.is_set
                    )
                self.clickhouse.ok()
                return stored, committed, found, replayed
            except Exception as exc:  # noqa: BLE001 - asked again: see _on_assign
                outage = self.kafka if isinstance(exc, KafkaException) else self.clickhouse
                outage.failed(f"{type(exc).__name__}: {exc}; where to resume is asked again", exc)
                if self._stop.is_set():
                    return None
                with self.watch.waiting(outage.what):
                    self._stop.wait(pause)
                pause = min(pause * 2, RETRY_MAX_S)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Never raises: when a rebalance callback raises, confluent-kafka assigns the partitions itself, at
        # the group's committed offsets, so everything stored after them (a batch whose commit failed, a
        # sink SIGKILLed between insert and commit) would be read and inserted again with other batch
        # boundaries, i.e. another deduplication token (only the event keys' filter would stand in the way).
        found = self._stored_and_committed(consumer, partitions)
        if found is None:  # stopping: take the partitions but read none of them
            consumer.assign(partitions)
            consumer.pause(partitions)
            return
        stored, committed, findings, replayed = found
        report(list(findings.values()))
        with contextlib.suppress(Exception):  # a check that only warns: never in the assignment's way
            self.logs.check_window(list(findings.values()))
        split_partitions(consumer, self.settings)  # partitions added to a raw topic: said, not mended
        for tp in partitions:
            have = stored.get((tp.topic, tp.partition))
            finding = findings.get((tp.topic, tp.partition))
            if finding is not None:
                tp.offset = finding.resume
                # committed at once too: the group's offset may lie beyond this log's end
                self._resume.append(TopicPartition(tp.topic, tp.partition, finding.resume))
            elif have is not None and have + 1 > committed.get((tp.topic, tp.partition), -1):
                tp.offset = have + 1
                # committed once consume() returns: a partition with nothing more to read would otherwise
                # keep a group offset behind what is stored (the lag others read from it)
                self._resume.append(TopicPartition(tp.topic, tp.partition, have + 1))
            elif tp.offset < 0:
                tp.offset = committed.get((tp.topic, tp.partition), tp.offset)  # for the lag (sink_lag)
            past = replayed.get((tp.topic, tp.partition))
            if past is not None and finding is None and past + 1 > tp.offset:
                tp.offset = past + 1  # a half-stored batch stored whole just now (sink_replay)
                self._resume.append(TopicPartition(tp.topic, tp.partition, past + 1))
        assign_log.info(
            "sink: assigned %s",
            ", ".join(
                f"{tp.topic}[{tp.partition}] from {tp.offset} (stored up to "
                f"{stored.get((tp.topic, tp.partition), 'none')}, committed {committed.get((tp.topic, tp.partition))})"
                for tp in partitions
            ),
        )
        self.lag.assigned(partitions)
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Eager rebalancing (librdkafka's default strategies) revokes every partition, and _on_assign
        # then sets every position again. So the batch in flight is finished and committed while the
        # partitions are still ours, and what is only buffered is dropped: whoever gets a partition
        # (this sink included) reads it again after what is stored, instead of inserting it twice.
        try:
            self._settle()
        finally:
            self._buf = Batch(self.alerts_topic)
            self._queue.clear()  # a prepare still running finishes unused
            self._resume = []  # set again by the next assignment
            # offsets not committed are not ours to commit any more: the next owner resumes after what is stored
            self._owed.clear()

    # --- the loop ------------------------------------------------------------------------------
    # The sink's thread owns the Kafka consumer: with confluent-kafka, a commit from another thread
    # waits until consume() calls stop. ClickHouse works without the GIL on the other two threads.
    def start(self) -> EventSink:
        if self.settings.clickhouse_embedded:
            events_json.clean_scratch()  # at start: a sink that stores nothing for a while still cleans
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread = threading.Thread(target=self._run, name="clickhouse-sink", daemon=True)
        self._thread.start()
        self.watch.start_watchdog()  # judges only once the thread has beaten (loop_stuck_exit_s 0: none)
        self.folder.start()
        return self

    def _run(self) -> None:
        pause = RETRY_FIRST_S
        next_probe = time.monotonic()
        while not self._stop.is_set():
            self.watch.beat()
            try:
                self._consume(0.2)
                self._advance()
                self._serve_flush_requests()
                self.lag.measure(self.consumer, self._held())
                if time.monotonic() >= next_probe:
                    with self.watch.waiting("Kafka"):
                        probe_kafka(self.consumer, self.topics[0], self.kafka)
                    next_probe = time.monotonic() + KAFKA_PROBE_S
                if not (self.clickhouse.down or self.kafka.down):
                    pause = RETRY_FIRST_S  # only once a retry succeeded (a pass without a failure is not one)
            except Exception as exc:  # noqa: BLE001 - keep the sink alive; the batch is retried (transient)
                # One line when the outage begins (with its traceback), one when it ends: not one per retry.
                outage = self.kafka if isinstance(exc, KafkaException) else self.clickhouse
                if not outage.failed(
                    f"{type(exc).__name__}: {exc}; retrying, the pause growing to {RETRY_MAX_S:g} s", exc
                ):
                    log.debug("sink batch failed again; retrying in %.1f s: %s", pause, exc)
                metrics.SINK_BATCHES_FAILED.inc()
                with contextlib.suppress(Exception):  # the figures stay as they were
                    self.lag.measure(self.consumer, self._held(), every_s=0)
                with self.watch.waiting(outage.what):
                    self._stop.wait(pause)
                pause = min(pause * 2, RETRY_MAX_S)
        try:
            self._serve_flush_requests()
            self._flush_here()
        except Exception:  # noqa: BLE001 - not committed: read again after a restart
            log.exception("sink: stopping, the last batches were not all stored and committed")
        finally:
            # Asked to stop: no longer judged. A thread ended by an exception the loop does not catch never
            # gets here (it leaves the while loop): its watchdog goes on and ends the process, as for a stuck one.
            self.watch.stop()
            self._preparer.shutdown()
            self._inserter.shutdown()
            self.consumer.close()

    def _advance(self) -> None:
        """Move batches along: commit the inserted one, take the buffer when it is due, prepare the next,
        insert the prepared one. With a batch already waiting, a due buffer waits for it (back-pressure:
        at most three batches are held, buffer included)."""
        self._commit_owed()
        if self._inflight is not None and self._inflight[0].done():
            self._settle()
        while self._queue and self._due():
            self._settle()
            self._start_insert(wait=True)
        if self._due():
            self._queue.append([self._take(), None])
        if self._queue:
            self._first_prepared()
        if self._inflight is None:
            self._start_insert(wait=False)

    def add(self, msgs: list) -> None:
        """Take consumed messages into the buffer, as consuming does (for callers that read them another
        way: tools, and tests that deliver one batch twice). Only while the sink's thread is not running."""
        self._buf.add(msgs)

    @property
    def held(self) -> int:
        """Messages consumed and not stored yet (in flight, queued, buffered); read from another thread it is
        a moment's figure."""
        return sum(len(b) for b in self._held())

    def _held(self) -> list[Batch]:
        """Every batch consumed and not stored yet (the one in flight, the queued ones, the buffer)."""
        held = [self._inflight[1]] if self._inflight is not None else []
        return held + [item[0] for item in self._queue] + [self._buf]

    def _first_prepared(self) -> Future:
        """The prepare step of the first queued batch, started if it was not."""
        item = self._queue[0]
        if item[1] is None:
            prepared = item[1] = self._preparer.submit(self.store.prepare, item[0])
            self.watch.hand_over(self.store.prepare_watch, prepared)
        return item[1]

    def _start_insert(self, wait: bool) -> None:
        """Hand the first queued batch to the inserter (nothing may be in flight): with ``wait``, at once
        (the insert waits for its prepare step), else only once it is prepared."""
        if not self._queue or not (self._first_prepared().done() or wait):
            return
        batch, prepared = self._queue.popleft()
        self._inflight = (self._inserter.submit(self.store.write, batch, prepared), batch)
        self.watch.hand_over(self.store.insert_watch, self._inflight[0])

    def poll_once(self, timeout: float = 0.2) -> None:
        """Consume once; when the buffer is due, store it and commit before returning (a ``flush``)."""
        self._consume(timeout)
        if self._due():
            self.flush()

    def _consume(self, timeout: float) -> None:
        # No cyclic GC while 10,000 Message objects are made and turned into lines: collections in
        # between would promote them to the old generations and trigger full collections over
        # everything the process holds (a large share of the sink's CPU: BENCHMARKS.md, Profiling notes). They are freed by refcount.
        gc_was = gc.isenabled()
        gc.disable()
        try:
            msgs = self.consumer.consume(num_messages=min(10_000, self.settings.sink_batch_rows), timeout=timeout)
            self._buf.add(msgs)
            del msgs
        finally:
            if gc_was:
                gc.enable()
        if self._resume:
            resume, self._resume = self._resume, []
            self._owe(resume)
            self._commit_owed()

    def _due(self) -> bool:
        return bool(
            self._buf
            and (
                len(self._buf) >= self.settings.sink_batch_rows
                or time.monotonic() - self._buf.first_at >= self.settings.sink_batch_seconds
            )
        )

    def _take(self) -> Batch:
        batch, self._buf = self._buf, Batch(self.alerts_topic)
        return batch

    def _settle(self) -> None:
        """Wait for the batch in flight, then commit its offsets. A failed insert puts the batch back (next,
        alone, prepared again: the same lines and token); a failed commit does not: the batch is stored, only
        its offsets are owed (``_commit_owed``), so it is never inserted again."""
        if self._inflight is None:
            return
        (inserted, batch), self._inflight = self._inflight, None
        try:
            # as alive as the insert thread: waiting on ClickHouse while it is, stuck when it is stuck
            with self.watch.waiting_for(self.store.insert_watch):
                rows = inserted.result()
        except Exception:
            self._queue.appendleft([batch, None])
            raise
        self.clickhouse.ok()
        self.rows_written += rows
        self._owe(batch.commit_offsets())
        self.lag.progressed(self._held())
        self._commit_owed()

    def _owe(self, offsets: list[TopicPartition]) -> None:
        for tp in offsets:  # batches are stored in order: a later offset of a partition replaces an earlier one
            key = (tp.topic, tp.partition)
            self._owed[key] = max(tp.offset, self._owed.get(key, tp.offset))

    def _commit_owed(self) -> None:
        """Commit the offsets of everything stored (raises while Kafka does not take them; kept until it does)."""
        if self._owed:
            self._commit([TopicPartition(t, p, o) for (t, p), o in self._owed.items()])
            self._owed.clear()

    def _commit(self, offsets: list[TopicPartition]) -> None:
        with self.watch.waiting("Kafka"):
            self.consumer.commit(offsets=offsets, asynchronous=False)
        self.kafka.ok()

    def flush(self) -> int:
        """Insert everything buffered, then commit its offsets; return the rows this call wrote.
        While the sink runs, its own thread does it (it owns the consumer)."""
        if self._thread is None or threading.current_thread() is self._thread:
            return self._flush_here()
        done: Future = Future()
        self._flush_requests.put(done)
        while True:
            try:
                return done.result(timeout=0.5)
            except FutureTimeout:
                if not self._thread.is_alive() and not done.done():
                    return self._flush_here()  # stopped meanwhile: nobody else uses the consumer

    def _serve_flush_requests(self) -> None:
        while not self._flush_requests.empty():
            done = self._flush_requests.get()
            try:
                done.set_result(self._flush_here())
            except Exception as exc:  # noqa: BLE001 - the caller gets it
                done.set_exception(exc)

    def _flush_here(self) -> int:
        """Everything taken or buffered, in order: the batch in flight, the queued ones, the buffer."""
        before = self.rows_written
        self._commit_owed()
        self._settle()
        if self._buf:
            self._queue.append([self._take(), None])
        while self._queue:
            self._start_insert(wait=True)
            self._settle()
        return self.rows_written - before

    def stop(self) -> None:
        """Stop consuming; what is buffered is flushed first (shutdown never loses a batch)."""
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        self.watch.stop()
        self.folder.stop()
        self.dead_letters.close()
        self.lag.forget()
