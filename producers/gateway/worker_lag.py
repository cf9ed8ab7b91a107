"""How far live processing is behind, read from Kafka for the overload policy (``overload.py``).

The worker group (Faust's group id is ``app_id``) commits its offsets every second. Every
``gateway_overload_check_s`` one consumer handle of that group id (it never subscribes, so it never joins
the group or commits) asks the broker for the group's committed offsets (one OffsetFetch to the group
coordinator) and the raw topics' end offsets of those partitions (one ListOffsets per partition leader). Not
librdkafka's admin client: its ListConsumerGroupOffsets aborted the whole process on an assertion
(``rd_kafka_enq_once_del_source_return: eonce->refcnt > 0``) during a broker outage, 2 of 2 runs of
test_broker_outage (confluentinc/librdkafka#3663, open). At the default 2 s that is ~1 small request/s
for the whole gateway: with ``gateway_workers`` > 1 the supervisor reads and its worker
processes share the reading through a few shared doubles (``SharedReading``); a single process reads for
itself. Partitions the group has never committed count for nothing (no worker ever folded them: not an
overload). Each reading also says whether the lag grows (``Reading.growth_per_s``: its change per second
between readings at which the commits moved, over the last few seconds since the commits last paused, or
over a worker's last bursts of commits; ``LagProbe._growth``): a lag over the high mark that shrinks is a
backlog draining, not an overload. A read that fails (the broker away, in secure mode a principal without DESCRIBE on the
group) leaves the last reading to go stale, and a stale reading refuses nobody.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.sharedctypes import RawArray
from typing import Any

from livemetrics.kafka_config import consumer_config
from livemetrics.kafka_logs import client_logger
from livemetrics.settings import RAW_TOPICS, Settings
from producers.gateway.overload import Reading, Shedder

log = logging.getLogger("livemetrics.gateway")

DRAIN_SMOOTHING = 0.5  # weight of the newest drain rate (commits come every second, reads every 2)
GROWTH_SPAN_S = 5.0  # the lag's growth is measured over the commit points of this span (at least two)
GROWTH_MIN_S = 1.5  # and not over less (more than one of the worker's 1-s commits: else it is their jitter)
PAUSE_S = 3.0  # no commit for this long (and 1.5 checks; the worker commits every second): a pause


def stale_after(settings: Settings) -> float:
    """A reading older than this refuses nobody (three reads missed, and at least 10 s)."""
    return max(3 * settings.gateway_overload_check_s, 10.0)


class LagProbe:
    """Reads the worker group's lag every ``gateway_overload_check_s`` on its own thread; each reading goes
    to ``publish`` (and is kept as ``latest``)."""

    def __init__(self, settings: Settings, publish: Callable[[Reading], None] | None = None):
        self.settings = settings
        self.group = settings.app_id
        self.topics = frozenset(settings.topic(t) for t in RAW_TOPICS)
        self.publish = publish
        self.latest: Reading | None = None
        self._committed = -1  # the sum of the last reading's committed offsets
        self._progressed_at = 0.0
        self._drain = 0.0
        self._moving: deque[tuple[float, int]] = deque()  # (at, lag) of the commit points since the last pause
        self._chain: deque[tuple[float, int]] = deque(maxlen=3)  # a base and the bursts after it, each after a pause
        self._last_commit_at: float | None = None
        self._growth_now = 0.0
        self._client: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._partitions: list[Any] = []  # the raw topics' partitions (from the broker's metadata)

    def _consumer(self) -> Any:
        """One consumer handle of the worker group's id for the probe's life, never subscribed (so never a
        member of the group and never committing), its log lines through the throttled client logger (served
        by ``poll`` between reads: a broker outage otherwise printed a line per failed connection)."""
        if self._client is None:
            from confluent_kafka import Consumer

            conf = consumer_config(self.settings, self.group, logger=client_logger())
            self._client = Consumer(conf)
        return self._client

    def read(self, timeout: float = 5.0) -> tuple[int, int] | None:
        """(lag, sum of committed offsets) over the raw topics' committed partitions; None if not read."""
        from confluent_kafka import TopicPartition

        consumer = self._consumer()
        try:
            if not self._partitions:
                meta = consumer.list_topics(timeout=timeout)
                self._partitions = [
                    TopicPartition(t, p)
                    for t in sorted(self.topics)
                    if t in meta.topics
                    for p in meta.topics[t].partitions
                ]
            committed = {
                (tp.topic, tp.partition): tp.offset
                for tp in consumer.committed(self._partitions, timeout=timeout)
                if tp.error is None and tp.offset >= 0
            }
            lag = 0
            if committed:
                # timestamp -1 is "latest" in ListOffsets: one request per leader for all partitions
                # (get_watermark_offsets sends two per partition)
                ends = consumer.offsets_for_times([TopicPartition(t, p, -1) for t, p in committed], timeout=timeout)
                for tp in ends:
                    if tp.error is not None or tp.offset < 0:
                        raise RuntimeError(f"no end offset for {tp.topic} [{tp.partition}]: {tp.error}")
                    lag += max(0, tp.offset - committed[(tp.topic, tp.partition)])
        except Exception as exc:  # noqa: BLE001 - broker away, group unknown, not allowed: no reading
            self._partitions = []  # asked again next time (a topic may have been created meanwhile)
            if not self._failing:
                log.warning("overload protection: the worker group's lag was not read (%s); refusing no one", exc)
            self._failing = True
            return None
        if self._failing:
            log.info("overload protection: the worker group's lag is read again")
        self._failing = False
        return lag, sum(committed.values())

    def step(self, now: float | None = None) -> Reading | None:
        """One read, turned into a ``Reading`` (with the progress and drain rate since the last one)."""
        got = self.read()
        if got is None:
            self._moving.clear()  # the lag unknown meanwhile: its growth is measured again from the next read
            self._chain.clear()
            self._last_commit_at = None
            return None
        now = time.monotonic() if now is None else now
        lag, committed = got
        last = self.latest
        moved = self._committed >= 0 and committed != self._committed
        if self._committed < 0 or moved:
            self._progressed_at = now
        if last is not None and self._committed >= 0 and now > last.at:
            rate = max(0, committed - self._committed) / (now - last.at)
            self._drain = rate if self._drain <= 0 else DRAIN_SMOOTHING * rate + (1 - DRAIN_SMOOTHING) * self._drain
        self._committed = committed
        self.latest = Reading(now, lag, self._progressed_at, self._drain, self._growth(now, lag, moved))
        if self.publish is not None:
            self.publish(self.latest)
        return self.latest

    def _growth(self, now: float, lag: int, moved: bool) -> float:
        """How fast the lag grows (events/s), from the readings at which the commits moved ("commit points":
        the lag right after a commit is the backlog; between two it also holds what came since):

        - over the last ``GROWTH_SPAN_S`` (and at least ``GROWTH_MIN_S``) of commit points since the commits
          last paused (no commit point for ``pause``: a stopped or restarting worker, a deploy). The first
          commit point after a pause only starts the measure: the interval before it holds the pause's growth;
        - or, for a worker that commits only in bursts (every commit after a pause), from the last three
          commit points when the lag rose at each of the last two: a burst that folds more than came since
          shows a shrinking lag. A pause of ``gateway_overload_stalled_s`` (a stop) starts this afresh too.

        Between two commit points the last measure stands until a pause; 0: unknown or after a pause."""
        pause = max(PAUSE_S, 1.5 * self.settings.gateway_overload_check_s)
        since = None if self._last_commit_at is None else now - self._last_commit_at
        if not moved:
            return self._growth_now if since is not None and since < pause else 0.0
        self._last_commit_at = now
        after_pause = since is None or since >= pause
        run, chain = self._moving, self._chain
        if after_pause:
            run.clear()
        run.append((now, lag))
        while len(run) > 2 and run[1][0] <= now - GROWTH_SPAN_S:
            run.popleft()
        if after_pause and since is not None and since < self.settings.gateway_overload_stalled_s:
            chain.append((now, lag))  # a burst after a short pause: the chain of bursts goes on
        else:
            chain.clear()
            chain.append((now, lag))  # a commit in the flow, or the first after a stop: a new base
        at0, lag0 = run[0]
        growth = 0.0
        if now - at0 >= GROWTH_MIN_S:
            growth = (lag - lag0) / (now - at0)
        elif len(chain) == 3 and chain[0][1] < chain[1][1] < chain[2][1]:
            growth = (lag - chain[0][1]) / (now - chain[0][0])
        self._growth_now = growth
        return growth

    def start(self) -> LagProbe:
        self._thread = threading.Thread(target=self._run, name="worker-lag", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            due = time.monotonic() + self.settings.gateway_overload_check_s
            self.step()
            while not self._stop.wait(min(1.0, max(0.0, due - time.monotonic()))) and time.monotonic() < due:
                self._consumer().poll(0)  # its log lines, between reads too

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._client is not None and (self._thread is None or not self._thread.is_alive()):
            self._client.close()  # never subscribed: leaves no group, commits nothing
            self._client = None


class SharedReading:
    """A ``Reading`` in shared memory: written by the supervisor's probe, read by its worker processes
    (handed to them at spawn). A sequence number around each write (odd while writing) keeps a reader from
    mixing two readings."""

    FIELDS = 1 + len(Reading._fields)

    def __init__(self, array: Any = None):
        self.array = array if array is not None else RawArray("d", self.FIELDS)

    def write(self, r: Reading) -> None:
        a = self.array
        a[0] += 1
        a[1], a[2], a[3], a[4], a[5] = r.at, float(r.lag), r.progressed_at, r.drain_per_s, r.growth_per_s
        a[0] += 1

    def read(self) -> Reading | None:
        a = self.array
        for _ in range(3):
            seq = a[0]
            if seq == 0:
                return None  # nothing read yet
            if seq % 2:
                continue
            at, lag, progressed_at, drain, growth = a[1], a[2], a[3], a[4], a[5]
            if a[0] == seq:
                return Reading(at, int(lag), progressed_at, drain, growth)
        return None


# The supervisor's shared reading (its ``SharedReading.array``), set in each of its worker processes at
# their start (producers/gateway/workers.py); None in a gateway of one process.
SHARED: Any = None


def new_shedder(settings: Settings) -> Shedder:
    """The overload policy of ``settings``, without readings yet (``feed`` gives them)."""
    return Shedder(
        lambda: None,
        high=settings.gateway_overload_lag_events,
        low=settings.gateway_overload_clear_events,
        share=settings.gateway_overload_share,
        window_s=settings.gateway_overload_window_s,
        stalled_s=settings.gateway_overload_stalled_s,
        stale_s=stale_after(settings),
        processes=settings.gateway_workers,
    )


def feed(shedder: Shedder, settings: Settings) -> LagProbe | None:
    """Give ``shedder`` its readings: the supervisor's in a worker process of several, else those of a probe
    of its own, started here (the caller stops it)."""
    if not shedder.enabled:
        return None
    if SHARED is not None:
        shedder.source = SharedReading(SHARED).read
        log.info("overload protection: the worker group's lag comes from the gateway's supervisor")
        return None
    log.info("overload protection: this gateway process reads the worker group's lag itself")
    probe = LagProbe(settings).start()
    shedder.source = lambda: probe.latest
    return probe
