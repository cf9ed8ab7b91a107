"""Whether the offsets the sink stored in ClickHouse (``sink_offsets``) belong to the Kafka log it is assigned,
checked at each assignment (``EventSink._on_assign``), and where to read a partition whose offsets do not.

The sink resumes each partition after the highest offset stored from it. That is right only for the log the
offset was read from. When a topic is deleted and created again, when the sink is pointed at another cluster
with the same topic names, or when an unclean leader election truncates a partition, ClickHouse keeps the old
offsets: resuming after one would skip every message of the new log below it, for good (they are never read).
Four signs, per partition:

- a new log: the topic's id (Kafka gives every topic a new one when it is created) is not the one recorded in
  ``sink_logs`` (migration 015) at the partition's last assignment;
- stored beyond the log's end: the stored offset is at or past the high watermark (the log was truncated, or is
  a new one whose id is not known: topic ids unreadable, or first recorded now);
- expired unread: the offset after the stored one is below the log's start (retention deleted messages before
  the sink read them: they are gone; said so, the sink reads from the start, as Kafka would);
- unrecorded: offsets stored, no topic id recorded for them (a sink of this version records it at an assignment,
  before it stores anything) and no offset committed by the group: what a log recreated before this check was in
  place looks like once it has grown past the stored offset (Kafka dropped the group's offsets with the topic).

Except for expired ones, the stored offsets of the partition are forgotten (deleted from ``sink_offsets``, so that
they do not show up again once the new log is longer than they are), and the partition is read from the log's
start, never from the group's offset: a commit of the old log's offsets can land on the new topic (one owed
through the recreation), and where a truncated log was cut is not known (its new messages come from there on,
and the group's offset may lie past it). Reading from the start reads again what
was already stored from this log, if anything (a truncated log keeps its start; an unrecorded one may be the same
log after all): the event keys' filter (``queries/sink_events_unseen.sql``) drops every event stored within
``dedup_window_hours``, which the settings keep at least the raw topics' retention + 2 h (segments roll hourly: a
record goes at most ~1 h 5 min past the retention), so everything still in the log; payment alerts read
again replace their row (``payment_errors`` is a ReplacingMergeTree by alert). Nothing is lost: skipping ahead
could lose messages, a second read only costs time. Each finding is a WARNING naming topic, partition, the stored
offset and the log's range, and counts in ``livemetrics_sink_log_resets_total{topic,reason}``.

Not seen: a new log whose topic id cannot be read (a broker without topic ids) and that grew past the stored
offset while the group kept an offset within it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from clickhouse.client import get_client
from livemetrics import metrics
from livemetrics.kafka_config import admin_config
from livemetrics.kafka_logs import client_logger
from livemetrics.settings import RAW_TOPICS, Settings

log = logging.getLogger("livemetrics.sink")

NEW_LOG, BEYOND_END, EXPIRED, UNRECORDED = "new_log", "beyond_end", "expired", "unrecorded"
# A raw topic read from its start that can hold records longer than the dedup window (check_window)
PAST_DEDUP_WINDOW = "past_dedup_window"
RETENTION_CHECK_MS = 300_000  # the broker's log.retention.check.interval.ms (Kafka's default)
# Admin clients given up on with a request in flight, never destroyed (see SinkLogs._client); one per broker
# timeout at an assignment.
_PARKED: list[AdminClient] = []


@dataclass(frozen=True)
class Finding:
    """A partition whose stored offset is not where to resume, and where to resume instead."""

    topic: str
    partition: int
    reason: str  # NEW_LOG, BEYOND_END, EXPIRED or UNRECORDED
    stored: int  # the highest offset stored in ClickHouse
    low: int  # the log's range: first offset, and the next one to be written (high watermark)
    high: int
    resume: int  # where the partition is read from instead
    detail: str = ""

    @property
    def forgets(self) -> bool:
        """The stored offsets are another log's: deleted, so that they never count again."""
        return self.reason != EXPIRED

    def message(self) -> str:
        what = {
            NEW_LOG: f"is a new log ({self.detail}): the stored offsets are another log's",
            BEYOND_END: "ends before the offset stored in ClickHouse: "
            + (
                "the log was truncated (an unclean leader election)"
                if self.detail
                else "the log was truncated or is a new one"
            ),
            UNRECORDED: "has offsets stored in ClickHouse from a log not recorded and none committed by the group: "
            "maybe a new log (the topic created again, or another cluster, before the sink recorded topic ids)",
            EXPIRED: f"starts after the offset stored in ClickHouse: offsets {self.stored + 1} to {self.low - 1} "
            "were deleted by the topic's retention before the sink read them (lost to ClickHouse)",
        }[self.reason]
        then = "forgotten; " if self.forgets else ""
        return (
            f"sink: {self.topic}[{self.partition}] {what}. Stored up to offset {self.stored}, the log holds "
            f"{self.low} to {self.high - 1} (high watermark {self.high}); {then}reading it from {self.resume}"
        )


def judge(
    tp: TopicPartition,
    stored: int | None,
    committed: int,
    low: int,
    high: int,
    recorded_id: str | None,
    topic_id: str | None,
) -> Finding | None:
    """What is wrong with resuming ``tp`` after ``stored`` (None: nothing stored), or None. ``committed``: the
    group's offset (negative: none); ``low``/``high``: the log's watermarks; the topic's id recorded at the last
    assignment and its id now (None: not known)."""
    if stored is None:
        return None
    # Every finding reads from the log's start, never the group's offset: a commit of the old log's offsets can
    # land on the new topic (one owed through the recreation), and a log cut short at some offset T got its new
    # messages from T on while the group's offset, committed before the cut, may lie past T.
    args = (tp.topic, tp.partition)
    if recorded_id is not None and topic_id is not None and recorded_id != topic_id:
        detail = f"topic id {topic_id}, the stored offsets were read from topic id {recorded_id}"
        return Finding(*args, NEW_LOG, stored, low, high, low, detail)
    if stored + 1 > high:
        # (A new leader whose high watermark is behind answers OFFSET_NOT_AVAILABLE meanwhile, KIP-207: asked
        # again, not taken for a cut.)
        same = recorded_id is not None and recorded_id == topic_id
        return Finding(*args, BEYOND_END, stored, low, high, low, "the same topic id" if same else "")
    if stored + 1 < low:
        return Finding(*args, EXPIRED, stored, low, high, low)
    if recorded_id is None and committed < 0:
        # No assignment recorded which log the stored offsets came from (a sink of this version records it before
        # it stores anything), and the group has no offset: Kafka drops a group's offsets with its topic, so this
        # is what a log recreated (or another cluster) before this check was in place looks like, grown past the
        # stored offset. Read from the start: if it is the same log after all, the event keys drop the copies.
        return Finding(*args, UNRECORDED, stored, low, high, low)
    return None


class SinkLogs:
    """Topic ids from Kafka, and per partition the one recorded in ClickHouse (``sink_logs``)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = settings.clickhouse_database
        self._admin: AdminClient | None = None

    def _client(self) -> AdminClient:
        # One for the sink's life, and one whose request timed out is parked, never destroyed: the project's rule
        # for admin clients (librdkafka can abort on an admin request's bookkeeping, confluentinc/librdkafka#3663;
        # the known cases are coordinator requests, group offsets, which this never makes: DescribeTopics is a
        # metadata request to any broker). Its lines go through the throttled
        # client logger (kafka_logs), served by poll below.
        if self._admin is None:
            self._admin = AdminClient({**admin_config(self.settings), "logger": client_logger()})
        return self._admin

    def topic_ids(self, topics: list[str], timeout: float = 10.0) -> dict[str, str]:
        """Each topic's id; a topic the broker does not describe (no id, not authorized) is left out.
        Raises KafkaException when the broker does not answer (the assignment asks again)."""
        admin = self._client()
        futures = admin.describe_topics(TopicCollection(topics), request_timeout=timeout)
        deadline = time.monotonic() + timeout
        while not all(f.done() for f in futures.values()) and time.monotonic() < deadline:
            admin.poll(0.1)
        ids = {}
        for topic, future in futures.items():
            if not future.done():
                _PARKED.append(admin)  # its request still in flight: kept for the process's life, a new one next
                self._admin = None
                raise KafkaException(f"describing topic {topic} took over {timeout:g} s")
            try:
                topic_id = str(future.result(timeout=0).topic_id)
            except KafkaException as exc:
                log.warning("sink: topic %s not described (%s): its log is checked by its offsets alone", topic, exc)
                continue
            if topic_id and topic_id.strip("0-") and topic_id != "None":  # librdkafka's zero id: none given
                ids[topic] = topic_id
        return ids

    def check_window(self, findings: list[Finding], timeout: float = 10.0) -> list[str]:
        """The raw topics these findings read from their start that can keep a record longer than
        ``dedup_window_hours`` (its retention.ms + segment.ms + the broker's 5-min check; the settings make sure
        the topics this version creates cannot, livemetrics/settings.py RAW_KEPT_PAST_RETENTION_HOURS, but a
        topic created before segments rolled hourly rolls weekly): events of it stored before the window and
        still in the log are stored again. Each is a WARNING saying what to set, counted as a reset with reason
        ``past_dedup_window``; the read goes on (skipping what is old could lose events never stored). A topic
        whose configs cannot be read is logged as not checked."""
        raw = {self.settings.topic(t) for t in RAW_TOPICS}
        topics = sorted({f.topic for f in findings} & raw)
        if not topics:
            return []
        window_ms = self.settings.dedup_window_hours * 3_600_000
        admin = self._client()
        futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
        over = []
        for resource, future in futures.items():
            topic = resource.name
            try:
                configs = future.result(timeout=timeout)
                retention = int(configs["retention.ms"].value)
                segment = int(configs["segment.ms"].value)
            except Exception as exc:  # noqa: BLE001 - not answered, not authorized: said, the read goes on
                log.warning("sink: %s's retention not checked against dedup_window_hours (%s)", topic, exc)
                continue
            kept = retention + segment + RETENTION_CHECK_MS
            if retention >= 0 and kept <= window_ms:
                continue
            over.append(topic)
            log.warning(
                "sink: %s keeps records up to %s (retention.ms %d + segment.ms %d + the broker's 5-min check), "
                "longer than dedup_window_hours (%d h): reading it from its start stores again events stored over "
                "%d h ago that are still in the log. Set the topic's segment.ms to 3600000 (docs/operations.md, "
                "Erasure) or raise LIVEMETRICS_DEDUP_WINDOW_HOURS",
                topic,
                "forever" if retention < 0 else f"{kept / 3_600_000:.1f} h",
                retention,
                segment,
                self.settings.dedup_window_hours,
                self.settings.dedup_window_hours,
            )
            metrics.SINK_LOG_RESETS.labels(topic, PAST_DEDUP_WINDOW).inc()
        return over

    def recorded(self, topics: list[str]) -> dict[tuple[str, int], str]:
        rows = (
            get_client(self.settings)
            .query(
                f"SELECT kafka_topic, kafka_partition, argMax(topic_id, seen_at) FROM {self.db}.sink_logs "
                "WHERE kafka_topic IN {topics:Array(String)} GROUP BY kafka_topic, kafka_partition",
                parameters={"topics": topics},
            )
            .result_rows
        )
        return {(t, int(p)): str(i) for t, p, i in rows}

    def forget(self, findings: list[Finding]) -> None:
        """Delete the stored offsets of these partitions (only the offsets: the rows stay in ``events``)."""
        c = get_client(self.settings)
        for f in findings:
            c.command(
                f"ALTER TABLE {self.db}.sink_offsets DELETE WHERE kafka_topic = {{t:String}} "
                "AND kafka_partition = {p:UInt16}",
                parameters={"t": f.topic, "p": f.partition},
                settings={"mutations_sync": 2},
            )

    def record(self, ids: dict[tuple[str, int], str]) -> None:
        if not ids:
            return
        rows: list[list[Any]] = [[t, p, i] for (t, p), i in sorted(ids.items())]
        get_client(self.settings).insert(
            f"{self.db}.sink_logs", rows, column_names=["kafka_topic", "kafka_partition", "topic_id"]
        )


def split_partitions(consumer: Consumer, settings: Settings, timeout: float = 5.0) -> dict[str, tuple[int, int]]:
    """Raw topics whose partition count is not the worker's sessions changelog's: {topic: (raw, changelog)}.
    Partitions added to a raw topic reach the sink (a rebalance), but the worker's tables are partitioned like
    the raw topics: a session's key moves to another partition (its next events meet no state), and a worker
    started afterwards stops (Faust's PartitionsMismatch). That cannot be mended in place: it is logged
    (ERROR) and shown (``livemetrics_raw_partitions_mismatch{topic}``, alert LivemetricsRawPartitionsChanged)
    at each assignment. A broker that does not answer changes nothing (asked again at the next one)."""
    changelog = f"{settings.app_id}-sessions-changelog"
    try:
        md = consumer.list_topics(timeout=timeout).topics
    except KafkaException:
        return {}
    log_md = md.get(changelog)
    if log_md is None or log_md.error or not log_md.partitions:
        return {}  # no worker's changelog yet
    split = {}
    for name in RAW_TOPICS:
        topic = settings.topic(name)
        t = md.get(topic)
        if t is None or t.error or not t.partitions:
            continue
        mismatch = len(t.partitions) != len(log_md.partitions)
        metrics.RAW_PARTITIONS_SPLIT.labels(topic).set(int(mismatch))
        if mismatch:
            split[topic] = (len(t.partitions), len(log_md.partitions))
            log.error(
                "sink: %s has %d partitions, the worker's sessions changelog %s %d: partitions were added to it. "
                "The sink stores every partition, but the worker's live state is split (a session's events now go "
                "to another partition) and a restarted worker stops (PartitionsMismatch). Partitions cannot be "
                "taken back: see docs/operations.md (A topic deleted and created again, another cluster)",
                topic,
                len(t.partitions),
                changelog,
                len(log_md.partitions),
            )
    return split


def report(findings: list[Finding]) -> None:
    for f in findings:
        log.warning("%s", f.message())
        metrics.SINK_LOG_RESETS.labels(f.topic, f.reason).inc()
