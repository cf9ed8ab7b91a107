"""Follows ``live-metrics`` (compacted: the latest snapshot per seller) and ``payment-alerts`` and fans
each message out to the seller's WebSocket subscribers on the event loop. Follows ``erasures`` too:
``livemetrics erase`` drops the customer's alerts from this replica's memory (livemetrics/erasure_notice.py).

Every API replica reads both topics whole (no consumer group), so each serves its own clients.

A topic deleted and created again: the new log is read from its start (``auto.offset.reset`` when the position
lies past its end, else once its new id is seen: livemetrics/topic_watch.py, every ``reader_topic_check_s``, as
are partitions added to a topic, and a topic created after the feed started).

Broker outages: the consumer reconnects by itself (librdkafka keeps its positions). While the broker
cannot be reached every snapshot this replica serves says ``"delayed": true`` (the dashboard shows a
banner), and each subscriber gets its snapshot again when that changes; nothing else stops."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from livemetrics import erasure_notice, metrics
from livemetrics.kafka_config import reader_config
from livemetrics.outage_log import Outage, probe_kafka
from livemetrics.settings import Settings
from livemetrics.skipped_messages import SkippedMessages, why_unreadable
from livemetrics.topic_watch import TopicWatch

log = logging.getLogger("livemetrics.api.feed")
_dec = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()
LAG_EVERY_S = 5.0
PROBE_EVERY_S = 1.0  # how often the broker is asked for metadata: a failed answer means live data is delayed

ALERT_QUEUE_LIMIT = 1000
# Erase records kept to drop an older alert of the customer that arrives after its record (rare; each
# incoming alert is checked against every one kept).
ERASURES_KEPT = 1000
ALERTS_SEEN = 50_000  # alert ids remembered for de-duplication, every seller's together
# Of those, one seller's at most: a public browser key's flood of payment failures pushed every other seller's
# alerts out of one shared window within minutes, and their redeliveries reached the dashboards again.
ALERTS_SEEN_PER_SELLER = 5_000
ERASURES_KEPT_S = 24 * 3600


class Subscriber:
    """One WebSocket: the latest snapshot (slow readers get coalesced snapshots, latest wins) and a
    bounded alert queue; if that overflows the socket is closed, never silently dropped."""

    def __init__(self, seller_id: str):
        self.seller_id = seller_id
        self.snapshot: tuple[dict, str] | None = None  # (snapshot, its WebSocket message, encoded once)
        self.alerts: deque[dict] = deque()
        self.overflowed = False
        self.closed = False  # the client went away (seen by the socket's reader task)
        self.wake = asyncio.Event()

    def offer_snapshot(self, snap: dict, message: str) -> None:
        self.snapshot = (snap, message)
        self.wake.set()

    def offer_alert(self, alert: dict) -> None:
        if len(self.alerts) >= ALERT_QUEUE_LIMIT:
            self.overflowed = True
        else:
            self.alerts.append(alert)
        self.wake.set()


class LiveFeed:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.latest: dict[str, dict] = {}
        self.recent_alerts: dict[str, deque] = {}
        self._seen_alerts: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._seen_by_seller: dict[str, OrderedDict[str, None]] = {}  # the same keys, per seller, oldest first
        self._erasures: deque[dict] = deque(maxlen=ERASURES_KEPT)
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.caught_up = threading.Event()
        self.delayed = False  # the broker cannot be reached: no new snapshots can arrive
        self.delayed_since: float | None = None
        # "lost Kafka since ..." once, "Kafka back after N s" once (livemetrics/outage_log.py)
        self.kafka = Outage(log, "live feed", "Kafka")
        self._skipped = SkippedMessages("live feed", metrics.LIVE_FEED_SKIPPED, log)  # unusable messages

    def start(self, loop: asyncio.AbstractEventLoop) -> LiveFeed:
        self.loop = loop
        self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    # --- subscriptions (event loop side) -------------------------------------------------------
    def subscribe(self, seller_id: str) -> Subscriber:
        sub = Subscriber(seller_id)
        self.subscribers.setdefault(seller_id, set()).add(sub)
        metrics.WS_CLIENTS.inc()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.seller_id)
        if subs and sub in subs:
            subs.discard(sub)
            metrics.WS_CLIENTS.dec()

    def count(self, seller_id: str) -> int:
        return len(self.subscribers.get(seller_id, ()))

    def _set_delayed(self, delayed: bool) -> None:
        """Say (or stop saying) on every seller's snapshot that live data is delayed; push it to dashboards.
        The outage itself is logged by the probe (``self.kafka``)."""
        if delayed == self.delayed:
            return
        self.delayed = delayed
        self.delayed_since = time.time() if delayed else None
        for seller, snap in list(self.latest.items()):
            self._deliver("snapshot", seller, snap)

    def _deliver(self, kind: str, seller: str, data: dict) -> None:
        if kind == "snapshot":
            data = {**data, "delayed": self.delayed}
            self.latest[seller] = data
            subs = self.subscribers.get(seller)
            if subs:  # encoded once for every dashboard of the seller, not once per socket
                message = _enc.encode({"type": "snapshot", "data": data}).decode()
                for sub in list(subs):
                    sub.offer_snapshot(data, message)
        elif kind == "erasure":
            self._erase(data)
        else:
            # At-least-once upstream: every alert reaches a seller once. Per seller: an event id is the
            # sender's choice, so another seller's alert with the same id must not hide this one.
            alert_key = (seller, data.get("alert_id") or data.get("event_id") or "")
            if alert_key in self._seen_alerts:
                return
            if any(erasure_notice.matches(e, data) for e in self._erasures):
                return  # an alert of an erased customer that arrived after its erase record
            self._remember(alert_key)
            self.recent_alerts.setdefault(seller, deque(maxlen=100)).appendleft(data)
            for sub in list(self.subscribers.get(seller, ())):
                sub.offer_alert(data)

    def _remember(self, alert_key: tuple[str, str]) -> None:
        """Note an alert as seen: past its seller's share the seller's own oldest goes, past the window's
        size the oldest of all."""
        seller, key = alert_key
        self._seen_alerts[alert_key] = None
        mine = self._seen_by_seller.setdefault(seller, OrderedDict())
        mine[key] = None
        if len(mine) > ALERTS_SEEN_PER_SELLER:
            self._seen_alerts.pop((seller, mine.popitem(last=False)[0]), None)
        if len(self._seen_alerts) > ALERTS_SEEN:
            (old_seller, old_key), _ = self._seen_alerts.popitem(last=False)
            theirs = self._seen_by_seller.get(old_seller)
            if theirs is not None:
                theirs.pop(old_key, None)
                if not theirs:
                    del self._seen_by_seller[old_seller]

    def _erase(self, record: dict) -> None:
        """Forget the erased customer's alerts: the recent ones and those queued for a socket."""
        horizon = time.time() * 1000 - ERASURES_KEPT_S * 1000
        while self._erasures and self._erasures[0].get("at", 0) < horizon:
            self._erasures.popleft()
        self._erasures.append(record)
        dropped = 0
        for seller, alerts in list(self.recent_alerts.items()):
            kept = [a for a in alerts if not erasure_notice.matches(record, a)]
            dropped += len(alerts) - len(kept)
            self.recent_alerts[seller] = deque(kept, maxlen=alerts.maxlen)
            for sub in list(self.subscribers.get(seller, ())):
                sub.alerts = deque(a for a in sub.alerts if not erasure_notice.matches(record, a))
        log.info("erase record applied", extra={"alerts_dropped": dropped})

    # --- the consumer thread -------------------------------------------------------------------
    @staticmethod
    def _report_lag(c: Consumer, parts: list[TopicPartition]) -> None:
        """Messages between this replica's position and the end of each followed topic (Prometheus)."""
        lag: dict[str, int] = {}
        try:
            for tp in c.position(parts):
                _, high = c.get_watermark_offsets(tp, timeout=1, cached=True)
                behind = high - tp.offset if tp.offset >= 0 else 0
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, behind)
        except Exception:  # noqa: BLE001 - a metric must never stop the feed
            return
        for topic, n in lag.items():
            metrics.CONSUMER_LAG.labels("api-feed", topic).set(n)

    def _probe(self, c: Consumer, topic: str) -> None:
        """Ask the broker for a topic's metadata (no answer: live data is delayed, the outage's start and end
        logged once each); tell the loop on change."""
        reachable = probe_kafka(c, topic, self.kafka, timeout_s=2)
        if reachable == self.delayed and self.loop is not None:
            self.loop.call_soon_threadsafe(self._set_delayed, not reachable)

    def _take(self, msg: Any, need_seller: bool) -> tuple[dict[str, Any], str] | None:
        """A message's object and seller, or None for one the feed cannot use (not a JSON object, a tombstone,
        no seller in it or its key where one is needed: an erase record names none): skipped, counted and logged (once a minute per topic), never the end of the
        feed. Before, the first such message ended this thread, and with it every seller's live data."""
        why = ""
        try:
            data = _dec.decode(msg.value())
            if not isinstance(data, dict):
                why = f"a JSON {type(data).__name__}, not an object"
            else:
                seller = data.get("seller_id") or (msg.key() or b"").decode()
                if isinstance(seller, str) and (seller or not need_seller):
                    return data, seller
                why = "no seller_id in it or its key"
        except (msgspec.DecodeError, TypeError, UnicodeDecodeError) as exc:
            why = why_unreadable(msg.value(), exc)
        self._skipped.skip(msg, why)
        return None

    def _follow_changes(
        self, c: Consumer, watches: list[TopicWatch], parts: list[TopicPartition]
    ) -> list[TopicPartition]:
        """Read a topic created again from its start, and partitions added to a topic (or a topic created after the
        feed started) from theirs; the partitions followed now. Not while Kafka is away (nothing to learn, and each
        look could hold the feed for its timeout). One look a turn: the watches fall due together, and three looks
        in a row at a broker that had just gone held the feed's probe (every second) for 6-9 s, so the API said
        live data was delayed that much later (CI at c3fbaf1, test_broker_outage)."""
        for watch in watches:
            if self.delayed or not watch.due():
                continue
            if (change := watch.look(timeout_s=2)) is None:
                break
            if change.recreated:  # the other topics' partitions go on from where they are
                at = {(tp.topic, tp.partition): tp.offset for tp in c.position(parts) if tp.offset >= 0}
                parts = [
                    TopicPartition(tp.topic, tp.partition, at.get((tp.topic, tp.partition), tp.offset))
                    for tp in parts
                    if tp.topic != watch.topic
                ] + [TopicPartition(watch.topic, p, OFFSET_BEGINNING) for p in change.partitions]
                c.assign(parts)
            else:
                added = [TopicPartition(watch.topic, p, OFFSET_BEGINNING) for p in change.added]
                c.incremental_assign(added)
                parts = parts + added
            break
        return parts

    def _run(self) -> None:
        snaps, alerts = self.settings.topic("live-metrics"), self.settings.topic("payment-alerts")
        erasures = self.settings.topic("erasures")
        # A broker back from an outage is found within a second (librdkafka's default backoff grows to 10 s).
        c = Consumer(
            # a recreated topic's new log read from its start (reader_config): before, every snapshot and alert
            # written to it was skipped; alerts read again are de-duplicated
            reader_config(self.settings, **{"reconnect.backoff.max.ms": 1000})
        )
        watches = [TopicWatch(self.settings, t, "live feed") for t in (snaps, alerts, erasures)]
        try:
            parts: list[TopicPartition] = []
            while not self._stop.is_set() and not parts:
                try:
                    md = c.list_topics(timeout=2)  # short: a stop() meanwhile waits for it (asked again)
                    for topic, start in ((snaps, OFFSET_BEGINNING), (alerts, OFFSET_END), (erasures, OFFSET_END)):
                        if topic in md.topics and not md.topics[topic].error:
                            parts += [TopicPartition(topic, p, start) for p in md.topics[topic].partitions]
                    # Alerts from now on: the end offsets are read here, not left to the fetcher as
                    # OFFSET_END (resolved later, asynchronously: an alert written in between was skipped).
                    for tp in parts:
                        if tp.offset == OFFSET_END:
                            tp.offset = c.get_watermark_offsets(tp, timeout=5)[1]
                except Exception:  # noqa: BLE001 - broker not reachable yet
                    parts = []
                if not parts:
                    time.sleep(0.5)  # the next try: a broker away answers nothing to wait on
            if self._stop.is_set():  # stopped before Kafka answered: each watch's first look would wait 2 s more
                return
            for w in watches:
                w.remember([tp.partition for tp in parts if tp.topic == w.topic], timeout_s=2)
            c.assign(parts)
            eof: set[tuple[str, int]] = set()
            next_lag = time.monotonic() + LAG_EVERY_S
            next_probe = time.monotonic() + PROBE_EVERY_S
            while not self._stop.is_set():
                if time.monotonic() >= next_probe:
                    self._probe(c, snaps)
                    next_probe = time.monotonic() + PROBE_EVERY_S
                if time.monotonic() >= next_lag:
                    next_lag = time.monotonic() + LAG_EVERY_S
                    self._report_lag(c, parts)
                parts = self._follow_changes(c, watches, parts)
                msg = c.poll(0.1)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        eof.add((msg.topic(), msg.partition()))
                        if len(eof) >= len(parts):
                            self.caught_up.set()
                    continue
                taken = self._take(msg, need_seller=msg.topic() != erasures)
                if taken is None:
                    continue
                data, seller = taken
                kind = "snapshot" if msg.topic() == snaps else "erasure" if msg.topic() == erasures else "alert"
                if self.loop is not None:
                    self.loop.call_soon_threadsafe(self._deliver, kind, seller, data)
        finally:
            for w in watches:
                w.close()
            c.close()
