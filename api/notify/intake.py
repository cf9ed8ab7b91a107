"""Alerts in, deliveries owed out: a consumer in its own group (``notify_group``) on ``payment-alerts``,
so each alert is taken by one API replica. For each alert it works out the deliveries (one per channel of
the seller), hands them to the dispatcher at once, records them as pending in ClickHouse meanwhile, and
commits the alerts' offsets once they are recorded. (Email channels get deliveries only while
``smtp_host`` is set.) An API that dies in between finds them again: uncommitted alerts come back from
Kafka, recorded deliveries from ClickHouse (the same delivery id either way: at least once, never lost).

The partitions assigned are what this notifier owns (api/notify/ownership.py). When some are revoked, the
callback waits until what was consumed from them is recorded and commits it, then until the dispatcher has
released their sellers (``on_revoke``: sends under way ended, outcomes stored), before the partitions move:
the next owner finds every owed delivery in ClickHouse and none is sent by both.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE, Consumer, TopicPartition

from api.notify import timing
from api.notify.channels import ChannelBook
from api.notify.ownership import Ownership
from api.notify.rules import quiet_until, wants
from api.notify.webhook import delivery_id
from api.privacy import mask_alert
from clickhouse import notify_deliveries as store
from clickhouse.notify_deliveries import Delivery
from livemetrics import metrics
from livemetrics.kafka_config import consumer_config
from livemetrics.outage_log import Outage, probe_kafka
from livemetrics.settings import Settings
from livemetrics.skipped_messages import SkippedMessages, why_unreadable

log = logging.getLogger("livemetrics.api.notify")
_dec = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()


def deliveries_for(alert: dict, channels: ChannelBook, now_ms: int, email: bool = True) -> list[Delivery]:
    """One pending delivery per channel of the alert's seller (email ones only when ``email``: SMTP is
    configured) whose rules want it, owed from now or from the end of the channel's quiet hours; masked
    for a channel without the PII right."""
    seller, alert_id = alert.get("seller_id") or "", str(alert.get("alert_id") or alert.get("event_id") or "")
    if not seller or not alert_id:
        return []
    out = []
    for ch in channels.of_seller(seller):
        if (ch.kind == "email" and not email) or not wants(ch.rules, alert):
            continue
        quiet = quiet_until(ch.rules, datetime.fromtimestamp(now_ms / 1000, UTC))
        start_ms = int(quiet.timestamp() * 1000) if quiet else now_ms
        body = _enc.encode(alert if ch.can_read_pii else mask_alert(alert))
        out.append(
            Delivery(
                seller_id=seller,
                delivery_id=delivery_id(seller, alert_id, ch.channel_id),
                alert_id=alert_id,
                alert_kind=str(alert.get("kind") or ""),
                channel_id=ch.channel_id,
                target=ch.target,
                body=body,
                created_ms=start_ms,
                next_ms=start_ms,
                at_ms=alert["at"] if isinstance(alert.get("at"), int) else 0,
                owed_ms=now_ms,
            )
        )
    return out


KAFKA_PROBE_S = 1.0  # how often the broker is asked for metadata (its loss and return are logged once)
METADATA_REFRESH_MS = 10_000  # how often the consumer refreshes payment-alerts' metadata (added partitions)


class AlertIntake:
    """Two threads: one consumes and hands the deliveries over at once, the other records them as pending
    (several consumed batches in one insert when it is behind); once recorded, the first commits those
    alerts' offsets. The
    consumer never waits for ClickHouse unless ``MAX_BEHIND`` batches wait for their record (then it does:
    ClickHouse away stops the intake, not the alerts' safety)."""

    MAX_BEHIND = 20
    REVOKE_WAIT_S = 30.0  # longest a revocation waits for the recorder (ClickHouse away: the alerts come again)

    def __init__(
        self,
        settings: Settings,
        channels: ChannelBook,
        hand_off: Callable[[list[Delivery]], None],
        ownership: Ownership | None = None,
        on_assign: Callable[[], None] = lambda: None,
        on_revoke: Callable[[], None] = lambda: None,
        clickhouse: Outage | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """``on_assign`` / ``on_revoke`` are called from the consumer's thread once ``ownership`` has changed
        (``on_revoke`` before the partitions move: it may block until the dispatcher let them go). ``clock``:
        the wall clock (seconds), whose time a first start's commits carry (tests skew it)."""
        self.clock = clock
        self.settings, self.channels, self.hand_off = settings, channels, hand_off
        self.ownership = ownership or Ownership()
        self._assigned_cb, self._revoked_cb = on_assign, on_revoke
        # outages logged once when they begin and once when they end (livemetrics/outage_log.py)
        self.clickhouse = clickhouse or Outage(log, "notifier", "ClickHouse")
        self.kafka = Outage(log, "notifier", "Kafka")
        self._skipped = SkippedMessages("notifier", metrics.NOTIFY_SKIPPED, log)  # messages holding no alert
        self.assigned = threading.Event()  # partitions assigned and their start positions fixed
        self._handed = self._stored = 0  # consumed batches queued for the recorder, and recorded
        self._progress = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._to_record: queue.Queue[tuple[list[Delivery], list[int], dict[tuple[str, int], int]]] = queue.Queue(
            self.MAX_BEHIND
        )
        self._recorded: queue.SimpleQueue[dict[tuple[str, int], int]] = queue.SimpleQueue()

    def start(self) -> AlertIntake:
        self._thread = threading.Thread(target=self._run, name="notify-intake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(self.settings.notify_timeout_s + 20)  # its revocation waits for sends under way

    def _on_assign(self, c: Consumer, parts: list[TopicPartition]) -> None:
        """Where each partition is read from: its committed offset; else, at the group's first start (nothing
        committed on any partition of the topic), its end, read now (an alert produced while the fetcher
        resolved a lazy ``latest`` would be skipped): alerts from before the first start are not sent. The first
        start commits those ends at once, with the end of every partition the topic had then (commit metadata
        ``start=<ms>;ends=<o0>,<o1>,...``), so that the group has started from then on. A partition with no
        committed offset later is then read from where the first start says it ended, if the topic had it then (a
        partition of a second notifier starting with the first, which finds those commits: not from its start,
        which would send the alerts from before the first start), else from its start: it was added to the topic
        since, so everything on it was written after the first start. No clock is asked: before, the first start
        was a time (the notifier's clock) and an added partition was read from the first alert stamped since
        (the worker's clock), so with the notifier's clock ahead, alerts written after the start but stamped
        before it were skipped. (Commits of a notifier before this, ``start=<ms>`` alone, are still read that
        way; once no commit says either, an uncommitted partition is read from its start.) Partitions read
        from a first start's ends are committed at once too, with the same metadata. Before 722d488, an added
        partition started at its end, and the alerts written to it until the group's next rebalance
        (librdkafka's metadata refresh: 5 minutes) were never delivered. Where to start is asked again until the
        broker answers (the outage logged once): the consumer's ``auto.offset.reset`` is ``earliest``, for a
        recreated topic's new log (below), so a partition left to it would send every alert the topic keeps.
        Before, a failed lookup fell back to ``latest`` and a failed partition count raised out of this
        callback, ending the notifier's thread."""
        pause = 0.5
        fresh: list[TopicPartition] = []  # partitions whose start is committed now, with ``meta``
        meta = ""
        while True:
            try:
                count = len(c.list_topics(parts[0].topic, timeout=10).topics[parts[0].topic].partitions) if parts else 0
                every = [TopicPartition(parts[0].topic, p) for p in range(count)] if parts else []
                done = {tp.partition: tp for tp in c.committed(every, timeout=10) if tp.offset >= 0}
                since, ends = _group_start(list(done.values()))
                if not done and parts:  # the group's first start: every partition's end, read now
                    began_ms = int(self.clock() * 1000)  # for people and older notifiers only: no start depends on it
                    ends = [c.get_watermark_offsets(tp, timeout=10)[1] for tp in every]
                    meta = _start_metadata(began_ms, ends)
                elif ends is not None:
                    meta = _start_metadata(since or 0, ends)
                fresh = []
                for tp in parts:
                    if tp.partition in done:
                        tp.offset = done[tp.partition].offset
                    elif ends is not None:  # the first start's end, or its start for a partition added since
                        tp.offset = ends[tp.partition] if tp.partition < len(ends) else OFFSET_BEGINNING
                        if tp.offset >= 0:
                            fresh.append(tp)
                    elif since is None:
                        tp.offset = OFFSET_BEGINNING  # added since the group started
                    else:  # a start committed by a notifier before ``ends=``: the first alert stamped since
                        end = c.get_watermark_offsets(tp, timeout=10)[1]  # before the lookup: none is missed
                        (at,) = c.offsets_for_times([TopicPartition(tp.topic, tp.partition, since)], timeout=10)
                        tp.offset = at.offset if at.offset >= 0 else end  # none written since: from the end read
                self.kafka.ok()
                break
            except Exception as exc:  # noqa: BLE001 - asked again
                self.kafka.failed(f"{type(exc).__name__}: {exc}; where to start reading is asked again", exc)
                if self._stop.wait(pause):
                    c.assign(parts)
                    c.pause(parts)  # stopping: read nothing
                    return
                pause = min(pause * 2, 10.0)
        c.assign(parts)
        if fresh:
            try:
                c.commit(
                    offsets=[TopicPartition(tp.topic, tp.partition, tp.offset, metadata=meta) for tp in fresh],
                    asynchronous=False,
                )
            except Exception as exc:  # noqa: BLE001 - asked again at the next assignment that finds none
                log.warning("notifier: could not commit where it started reading (%s): %s", fresh, exc)
        if parts:
            self.ownership.assign([tp.partition for tp in parts], count)
            log.info("notifier: payment-alerts partitions %s assigned", sorted(tp.partition for tp in parts))
            self._assigned_cb()
        self.assigned.set()

    def _on_revoke(self, c: Consumer, parts: list[TopicPartition]) -> None:
        """Before the partitions move: record and commit what was consumed from them, then let the
        dispatcher drop their sellers' deliveries and finish their sends (``on_revoke``)."""
        self.assigned.clear()
        began = time.monotonic()
        if not self._stop.is_set():  # stopping: the recorder is gone, the commit comes after it
            with self._progress:
                caught_up = self._progress.wait_for(lambda: self._stored >= self._handed, self.REVOKE_WAIT_S)
            if not caught_up:
                log.warning("notifier: revoked before its consumed alerts were recorded; their next owner reads them")
            self._commit_recorded(c, asynchronous=False)
        self.ownership.revoke(tp.partition for tp in parts)
        self._revoked_cb()
        log.info(
            "notifier: payment-alerts partitions %s let go in %.1f s",
            sorted(tp.partition for tp in parts),
            time.monotonic() - began,
        )

    def _run(self) -> None:
        s = self.settings
        c = Consumer(
            # auto.offset.reset earliest (consumer_config): only a position past the log's end comes to it (where
            # to start is set at each assignment), the topic deleted and created again (unclean leader elections
            # are off), whose new log is read from its start. With "latest", the alerts written to it meanwhile
            # were never delivered.
            # Its topic's metadata every 10 s (librdkafka's default: 5 minutes; its 1-s probe does not count):
            # partitions added to payment-alerts reach the group (a rebalance) within that, one small request each
            # time. The alerts written to them meanwhile wait there (``_on_assign`` reads them from their start).
            consumer_config(s, s.notify_group, **{"topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS})
        )
        c.subscribe([s.topic("payment-alerts")], on_assign=self._on_assign, on_revoke=self._on_revoke)
        recorder = threading.Thread(target=self._record_batches, name="notify-record", daemon=True)
        recorder.start()
        next_probe = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_probe:  # an idle consumer notices neither an outage nor its end
                    probe_kafka(c, s.topic("payment-alerts"), self.kafka)
                    next_probe = time.monotonic() + KAFKA_PROBE_S
                self._commit_recorded(c)
                msgs = c.consume(500, 0.05)  # returns at 500 or after 50 ms: an alert waits at most that here
                good = [m for m in msgs if not m.error()]
                if not good:
                    continue
                now_ms = int(time.time() * 1000)
                owed: list[Delivery] = []
                ends: dict[tuple[str, int], int] = {}  # (topic, partition) -> the offset to commit
                for m in good:
                    ends[(m.topic(), m.partition())] = m.offset() + 1
                    alert = self._take(m)
                    if alert is None:
                        continue
                    try:
                        _observe_arrival(alert, m, now_ms)
                        owed += deliveries_for(alert, self.channels, now_ms, email=bool(s.smtp_host))
                    except Exception:  # noqa: BLE001 - one odd alert must not stop the notifier
                        log.exception("notifier: alert at %s[%s]@%s skipped", m.topic(), m.partition(), m.offset())
                # Sent at once, stored meanwhile: the alerts' offsets are committed only once their
                # deliveries are stored, so whatever happens first nothing is lost (a crash in between
                # sends again, with the same ids). The versions are taken now, before any outcome's.
                at = store.versions(len(owed))
                if owed:
                    self.hand_off(owed)
                while not self._stop.is_set():
                    try:
                        self._to_record.put((owed, at, ends), timeout=0.2)
                        with self._progress:
                            self._handed += 1
                        break
                    except queue.Full:
                        continue  # ClickHouse is behind: wait for it (the alerts stay uncommitted)
        finally:
            self._stop.set()
            recorder.join(15)
            self._commit_recorded(c, asynchronous=False)  # what was stored meanwhile, before leaving
            c.close()

    def _take(self, m: Any) -> dict | None:
        """The alert in a message, or None for one that holds none (a tombstone, bytes that are not JSON, JSON
        that is not an object): skipped, counted (``livemetrics_notify_skipped_total``) and logged once a
        minute; its offset is committed with the others (the sink keeps the topic's record of it). Before, a
        tombstone ended this thread (TypeError): no alert of any seller was taken again."""
        try:
            alert = _dec.decode(m.value())
            if isinstance(alert, dict):
                return alert
            why = f"a JSON {type(alert).__name__}, not an object"
        except (msgspec.DecodeError, TypeError) as exc:
            why = why_unreadable(m.value(), exc)
        self._skipped.skip(m, why)
        return None

    def _record_batches(self) -> None:
        while not self._stop.is_set():
            try:
                batches = [self._to_record.get(timeout=0.2)]
            except queue.Empty:
                continue
            while True:
                try:
                    batches.append(self._to_record.get_nowait())
                except queue.Empty:
                    break
            owed = [d for b in batches for d in b[0]]
            at = [v for b in batches for v in b[1]]
            if not self._record(owed, at):
                return  # stopping: the alerts are not committed, the next start takes them again
            for b in batches:
                self._recorded.put(b[2])  # committed by the consumer's thread (see _commit_recorded)
            with self._progress:
                self._stored += len(batches)
                self._progress.notify_all()

    def _commit_recorded(self, c: Consumer, asynchronous: bool = True) -> None:
        """Commit the offsets of what the recorder stored, from the consumer's own thread: a synchronous
        commit from the recorder's thread could hang while this one was in ``consume`` (seen in tests).
        Asynchronous: a commit lost to a crash or a rebalance only means those alerts are read again."""
        ends: dict[tuple[str, int], int] = {}
        while True:
            try:
                ends.update(self._recorded.get_nowait())  # in order: later batches have the later offsets
            except queue.Empty:
                break
        if not ends:
            return
        try:
            c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in ends.items()], asynchronous=asynchronous)
        except Exception as exc:  # noqa: BLE001 - e.g. no longer assigned: the new owner reads them again
            log.warning("notifier: offset commit failed: %s", exc)

    def _record(self, owed: list[Delivery], at: list[int]) -> bool:
        """Store the deliveries as pending; ClickHouse unreachable: retry (alerts wait, nothing is lost)."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                started = time.monotonic()
                store.record(self.settings, owed, at)
                timing.observe("record", time.monotonic() - started)
                self.clickhouse.ok(kind="deliveries")
                return True
            except Exception as exc:  # noqa: BLE001 - any failure: try again, commit nothing meanwhile
                why = f"could not record deliveries (their alerts wait, uncommitted): {exc}"
                if not self.clickhouse.failed(why, kind="deliveries"):
                    log.debug("notifier: could not record %d deliveries, retrying: %s", len(owed), str(exc)[:200])
                self._stop.wait(delay)
                delay = min(delay * 2, 10)
        return False


START = "start="  # the commit metadata of a group's first start: its time (ms) ...
ENDS = ";ends="  # ... and the end of each partition the topic had then, by partition


# Kafka refuses a commit whose metadata is longer than the broker's ``offset.metadata.max.bytes`` (4,096 by
# default): a first start whose commit failed so would be taken again at every assignment, from the ends then.
META_MAX_CHARS = 4096


def _start_metadata(began_ms: int, ends: list[int]) -> str:
    """What a first start's commits carry: its time and every partition's end (a few bytes a partition, room for
    ~300 in the broker's default); a topic with too many partitions for that gets the time alone, read as before
    the ends (an added partition from the first alert stamped since: the clocks must roughly agree)."""
    meta = f"{START}{began_ms}{ENDS}{','.join(map(str, ends))}"
    return meta if len(meta) <= META_MAX_CHARS else f"{START}{began_ms}"


def _group_start(committed: list[TopicPartition]) -> tuple[int | None, list[int] | None]:
    """The group's first start, as the commits made at it say: its time (the earliest; None: no commit says it)
    and the end of every partition the topic had then (the lowest any commit says; None: no commit says them)."""
    since: int | None = None
    ends: list[int] | None = None
    for tp in committed:
        meta = tp.metadata or ""
        if not meta.startswith(START):
            continue
        began, _, listed = meta[len(START) :].partition(ENDS)
        if began.isdigit():
            since = int(began) if since is None else min(since, int(began))
        values = listed.split(",") if listed else []
        said = [int(v) for v in values] if values and all(v.isdigit() for v in values) else None  # by position
        if said is not None:  # two notifiers at the very first start: the lower end of each loses nothing
            ends = said if ends is None else [min(x for x in pair if x is not None) for pair in zip_longest(ends, said)]
    return since, ends


def _observe_arrival(alert: dict, m, now_ms: int) -> None:
    kind, written_ms = m.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE:
        return
    if alert.get("kind") == "payment_failed" and isinstance(alert.get("at"), int):
        timing.observe("to_alert", (written_ms - alert["at"]) / 1000)
    timing.observe("to_notifier", (now_ms - written_ms) / 1000)
