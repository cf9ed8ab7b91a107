"""A batch half stored, stored again whole (migration 019, ``sink_batches``).

ClickHouse writes an insert's part of ``events`` and the parts its views write (``event_key_batches``,
``sink_offsets``, the rollups, the session rows) one after another, not atomically. A sink process killed
between them (``make chaos``, 2026-12-07: the API SIGKILLed) left a batch's rows in ``events`` while
``sink_offsets`` did not count them and ``event_key_batches`` did not hold their keys: the next assignment
resumed after the batch before it, read the same messages again under other batch boundaries (another
deduplication token), and the keys' filter let them through: every message of the batch stored twice.

So the sink writes each batch's ranges and token (``record``) before its insert, and an assignment looks for
a batch that ``sink_offsets`` does not count but whose ranges start right after what it does (the one in
flight when a process died: ``pending``). That batch is read again from Kafka, exactly its ranges, which gives
the same token (``read_ranges``), and stored (``replay_unstored``, inside the assignment's lookup): ClickHouse drops what each table already holds (the insert's token,
and each view's own, ``deduplicate_blocks_in_dependent_materialized_views``) and writes what it missed; the
assignment then resumes after it. A batch never stored at all is stored the same way."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from clickhouse_connect.driver.exceptions import DatabaseError
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from clickhouse.client import get_client
from clickhouse.sink_batch import Batch
from clickhouse.sink_errors import error_code
from livemetrics.kafka_config import reader_config
from livemetrics.settings import Settings

if TYPE_CHECKING:  # sink_store calls ``record``: imported for the annotation only
    from clickhouse.sink_store import BatchStore

log = logging.getLogger("livemetrics.sink")

Ranges = list[tuple[str, int, int, int]]  # (topic, partition, first offset, last offset)
READ_S = 30.0  # how long a replay may take to read its messages from Kafka before the assignment goes on
RECENT = 50  # the newest recorded batches looked at (one is in flight per sink process)
UNKNOWN_TABLE = 60
_unrecorded_said = False


def record(client: Any, db: str, batch: Batch) -> None:
    """Write the batch's ranges and token, before its insert (on the inserting thread). A database not
    migrated to 019 yet (the sink migrates before it starts; a tool or test storing into an older schema)
    has no ``sink_batches``: the batch is stored without, as before 019, and that is said once."""
    global _unrecorded_said
    ranges = [[t, p, a, b] for (t, p), (a, b) in sorted(batch.ranges.items())]
    try:
        client.command(
            f"INSERT INTO {db}.sink_batches (token, ranges) SELECT {{t:String}}, {{r:String}}",
            parameters={"t": batch.token(), "r": json.dumps(ranges)},
        )
    except DatabaseError as exc:
        if error_code(exc) != UNKNOWN_TABLE:
            raise
        if not _unrecorded_said:
            _unrecorded_said = True
            log.warning("sink: %s.sink_batches is missing (not migrated to 019): batches are stored unrecorded", db)


def pending(settings: Settings, topics: list[str], stored: dict[tuple[str, int], int]) -> list[tuple[str, Ranges]]:
    """The recorded batches of these topics that ``stored`` (``sink_offsets``) does not count and whose every
    range starts right after what it does: (token, ranges), oldest first (``unstored``)."""
    try:
        rows = (
            get_client(settings)
            .query(
                f"SELECT token, ranges FROM {settings.clickhouse_database}.sink_batches ORDER BY at DESC LIMIT {RECENT}"
            )
            .result_rows
        )
    except DatabaseError as exc:
        if error_code(exc) != UNKNOWN_TABLE:
            raise
        return []  # a database not migrated to 019 (see ``record``): nothing recorded
    return unstored([(token, json.loads(text)) for token, text in reversed(rows)], topics, stored)


def unstored(
    recorded: list[tuple[str, list[list[Any]]]], topics: list[str], stored: dict[tuple[str, int], int]
) -> list[tuple[str, Ranges]]:
    """Of the recorded batches (oldest first), those of these topics that ``stored`` does not count in full and
    whose every range starts right after what it counts (no stored offset: -1): the batch in flight when its
    process died, or one never stored. A batch stored in full, or one after a batch not counted, is not."""
    out, seen = [], set()
    for token, raw in recorded:
        ranges: Ranges = [(str(t), int(p), int(a), int(b)) for t, p, a, b in raw]
        if token in seen or not ranges or any(t not in topics for t, _, _, _ in ranges):
            continue  # a batch retried is recorded at each try
        seen.add(token)
        follows = all(stored.get((t, p), -1) + 1 == a for t, p, a, _ in ranges)
        if follows and any(stored.get((t, p), -1) < b for t, p, _, b in ranges):
            out.append((token, ranges))
    return out


def read_ranges(settings: Settings, alerts_topic: str, ranges: Ranges, stop: Callable[[], bool]) -> Batch | None:
    """The messages of exactly these ranges, as a batch; None if some are no longer in the log (retention) or
    the sink is stopping. Raises ``KafkaException`` when Kafka does not give them within ``READ_S``: the
    assignment asks again (``EventSink._stored_and_committed``), as for any outage."""
    consumer = Consumer(reader_config(settings))  # assigned, never subscribed: no group join, nothing committed
    batch = Batch(alerts_topic)
    try:
        for t, p, a, _ in ranges:
            if consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[0] > a:
                return None  # deleted by retention: this batch cannot be read again whole
        consumer.assign([TopicPartition(t, p, a) for t, p, a, _ in ranges])
        ends = {(t, p): b for t, p, _, b in ranges}
        left = set(ends)
        deadline = time.monotonic() + READ_S
        while left and not stop():
            if time.monotonic() > deadline:
                raise KafkaException(
                    KafkaError(KafkaError._TIMED_OUT, f"a stored batch's messages not read in {READ_S} s")
                )
            msgs = consumer.consume(num_messages=10_000, timeout=0.5)
            keep = [m for m in msgs if m.error() is None and m.offset() <= ends.get((m.topic(), m.partition()), -1)]
            batch.add(keep)
            for m in keep:
                if m.offset() == ends[(m.topic(), m.partition())]:
                    left.discard((m.topic(), m.partition()))
        return None if left else batch
    finally:
        consumer.close()


def replay_unstored(
    settings: Settings,
    store: BatchStore,
    topics: list[str],
    alerts_topic: str,
    stored: dict[tuple[str, int], int],
    skip: Collection[tuple[str, int]],
    stop: Callable[[], bool],
) -> dict[tuple[str, int], int]:
    """Store again, whole, each recorded batch that ``stored`` does not count (``pending``), except those on the
    partitions in ``skip`` (their stored offsets are another log's, ``sink_logs``): the last offset so stored
    of each partition. Raises when Kafka or ClickHouse does not answer (the assignment asks again); a batch
    that cannot be read again whole is left to be read after what ``stored`` counts, as before, and said."""
    done: dict[tuple[str, int], int] = {}
    for token, ranges in pending(settings, topics, stored):
        if any((t, p) in skip for t, p, _, _ in ranges):
            continue
        batch = read_ranges(settings, alerts_topic, ranges, stop)
        if batch is None or batch.token() != token:
            log.warning("sink: a batch in flight before this assignment (%s) was not read again whole", ranges)
            continue
        prepared: Future = Future()
        prepared.set_result(store.prepare(batch))
        store.write(batch, prepared)
        log.warning("sink: a batch in flight before this assignment (%s) stored again whole", ranges)
        for t, p, _, b in ranges:
            done[(t, p)] = max(b, done.get((t, p), b))
    return done
