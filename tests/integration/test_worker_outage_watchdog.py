"""A broker outage longer than the loop watchdog's limit does not get the worker killed (docs/operations.md,
Broker outages): while its changelog producer's queue is full the sessions agent waits for room with the
event loop running (``streams/changelog.py``), so /healthz stays 200, the watchdog (``livemetrics/loop_watch.py``)
never fires, and once the broker is back the counts equal a recount, also those of a new worker whose
tables are recovered from the changelog (the rows that waited reached it whole and in order).

Before, ``DirectChangelog.write`` retried ``produce`` in a blocking ``poll`` loop while the queue was full: the
loop stopped beating for as long as the broker was away, /healthz said "stuck" after ``loop_stale_s`` and the
watchdog ended the worker with exit 70 after ``loop_stuck_exit_s`` (``up`` and compose restart a process that
exits: a broker outage became worker restarts). The queue is small here (``worker_changelog_queue_rows``) so
that the load fills it; with the default (1,000,000 rows) it fills when about that many rows are written while
nothing is acknowledged (minutes of a changelog partition without a leader while the raw topics are read).

The broker is SIGSTOPped here (connections stay open, nothing answers: what a hung broker or a network
partition looks like); ``test_broker_outage.py`` (make test) SIGKILLs it with the same checks. The first test
(make test, seconds, the session's broker) checks the order the waiting rows keep."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import threading
import time
import uuid
from collections import defaultdict

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from livemetrics.kafka_config import admin_config, consumer_config
from operations.ports import free_port
from streams.changelog import DirectChangelog
from tests.integration.test_broker_outage import waits_for_room
from tests.integration.test_streams_live import PAGES, Feed, Reader, event, wait_recount, wave
from tests.support.loop_gaps import record_gaps
from tests.support.servers import WorkerProcess, wait_until
from tests.support.services import local_kafka
from tests.support.stack import module_settings
from tests.support.stopped_group import stop_group

pytestmark = pytest.mark.integration

STALE_S, STUCK_EXIT_S = 2.0, 4.0  # the watchdog's limits in this test (defaults 10 s and 60 s)
OUTAGE_S = STUCK_EXIT_S + 2  # the broker stays stopped longer than the worker's loop may stay silent


def _changelog_rows(s, topic: str, partitions: int) -> dict[int, list[tuple[bytes, bytes | None]]]:
    c = Consumer(consumer_config(s, f"test-read-{uuid.uuid4().hex[:8]}"))
    try:
        parts = [TopicPartition(topic, p, 0) for p in range(partitions)]
        ends = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        c.assign(parts)
        rows: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        todo = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 30
        while todo and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            rows[m.partition()].append((m.key(), m.value()))
            if m.offset() + 1 >= ends[m.partition()]:
                todo.discard(m.partition())
        assert not todo, f"changelog not read to its end: {todo}"
        return rows
    finally:
        c.close()


def test_a_full_changelog_queue_keeps_each_partitions_order_and_never_blocks_the_loop(make_settings):
    """Rows that found the queue full wait behind their partition's earlier ones: the changelog topic
    holds every partition's rows in write order (what recovery replays), and the loop ran throughout."""
    s = make_settings(worker_changelog_queue_rows=20)
    topic = s.topic(f"changelog-order-{uuid.uuid4().hex[:6]}")
    admin = AdminClient(admin_config(s))
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    table = type("Table", (), {"changelog_topic_name": topic, "data": type("Store", (), {"data": {}})()})()
    log = DirectChangelog(table, s)
    rng = random.Random(5)
    expected: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)

    async def scenario() -> float:
        gaps: list[float] = []
        beat = asyncio.ensure_future(record_gaps(gaps))
        await asyncio.sleep(0.05)
        for w in range(16):
            partition = rng.randrange(3)  # often the partition whose rows still wait
            rows = [
                (f"k{rng.randrange(40)}".encode(), None if rng.random() < 0.1 else f"{w}-{i}".encode())
                for i in range(40)
            ]
            log.write(partition, rows)
            expected[partition] += rows
            if w % 5 == 4:  # now and then a batch waits for room, as the sessions agent does after each
                await log.room()
            elif rng.random() < 0.5:  # or deliveries free some room while rows still wait (over linger.ms)
                await asyncio.sleep(0.06)
        await log.flush(timeout=60)
        beat.cancel()
        return max(gaps)

    try:
        longest_gap = asyncio.run(scenario())
    finally:
        log.close(timeout=5)
    assert _changelog_rows(s, topic, 3) == expected
    assert longest_gap < 0.25, f"the event loop did not run for {longest_gap:.2f} s"


def _health(port: int) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.HTTPError:
        return None


def _waiting_rows(port: int) -> float:
    """``livemetrics_worker_changelog_waiting_rows`` on the worker's /metrics (-1: not there)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    found = re.search(r"^livemetrics_worker_changelog_waiting_rows (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


class Load(threading.Thread):
    """Steady load on new and old sessions until stopped: as fast as the feed sends (~500 events/s, more than
    the worker's small changelog queue lets it write) until ``slow()``, then ~20 events/s, also while the
    broker is away (the feed's producer holds them: its message timeout is longer than the outage)."""

    def __init__(self, feed: Feed, rng: random.Random):
        super().__init__(daemon=True)
        self.feed, self.rng = feed, rng
        self.done, self.slowed = threading.Event(), threading.Event()

    def run(self) -> None:
        sessions: list[tuple[str, str]] = []
        while not self.done.wait(0.05 if self.slowed.is_set() else 0):  # the load's pace
            if not sessions or self.rng.random() < 0.3:
                seller = self.rng.choice(("seller-a", "seller-b"))
                sessions.append((seller, f"{seller}-load-{uuid.uuid4().hex[:8]}"))
            seller, sid = self.rng.choice(sessions)
            self.feed.send(event(seller, sid, "page_view", self.rng.choice(PAGES)))

    def slow(self) -> None:
        self.slowed.set()

    def stop(self) -> None:
        self.done.set()
        self.join(10)


@pytest.mark.long  # 25-45 s here (two worker starts and its own broker's); make test has the SIGKILL flavour:
# test_broker_outage.py runs its worker with the watchdog on and a small queue, probing /healthz
@pytest.mark.timeout(240)
def test_a_worker_waits_out_a_stopped_broker_longer_than_its_stuck_limit_and_counts_exactly(tmp_path, clickhouse_dsn):
    with local_kafka(tmp_path / "kafka") as (bootstrap, broker):
        s = module_settings(
            bootstrap,
            clickhouse_dsn,
            tmp_path,
            worker_metrics_port=free_port(),
            loop_stale_s=STALE_S,
            loop_stuck_exit_s=STUCK_EXIT_S,
            # Room for 5 rows: the load fills it, and it stays full once the broker stops answering.
            worker_changelog_queue_rows=5,
        )
        worker = WorkerProcess(s, tmp_path, "worker").start()
        again = WorkerProcess(s, tmp_path, "again")
        snaps, rng = Reader(s, "live-metrics"), random.Random(7)
        feed = Feed(s, **{"message.timeout.ms": 120_000})  # its events wait out the outage too
        load = Load(feed, rng)
        stopped_pid = None
        try:
            feed.send(event("warmup", "warmup-session-1", "page_view", PAGES[0]))
            feed.flush()
            wait_until(lambda: snaps.poll().latest.get("warmup"), 90, what="worker up", alive=worker.alive)
            load.start()
            # The broker stops while the worker is waiting for room in its full changelog queue (it shows on
            # its /metrics): nothing answers on the broker's port, nothing is acknowledged.
            wait_until(
                lambda: _waiting_rows(s.worker_metrics_port) > 0,
                30,
                interval=0.02,
                what="the worker waiting for room in its changelog queue",
                alive=worker.alive,
            )
            stopped_pid = broker.pid()
            assert stopped_pid is not None
            stop_group(stopped_pid)  # every broker thread stopped, not only signalled
            stopped = time.monotonic()
            load.slow()
            answers: list[int] = []
            waiting_rows: list[float] = []  # what /metrics says: the worker is waiting on Kafka
            said: list[str | None] = []  # and /healthz
            while time.monotonic() < stopped + OUTAGE_S:  # the outage itself: the scenario's length
                r = _health(s.worker_metrics_port)
                answers.append(r.status_code if r is not None else 0)
                assert worker.alive(), f"the worker exited during the outage\n{worker.log_tail(80)}"
                assert r is not None and r.status_code == 200, (
                    f"/healthz during the outage: {r and r.status_code} {r and r.text}\n{worker.log_tail(80)}"
                )
                waiting_rows.append(_waiting_rows(s.worker_metrics_port))
                said.append(r.json().get("waiting_on"))
                time.sleep(0.5)  # a probe every half second, as a liveness watch would
            os.killpg(stopped_pid, signal.SIGCONT)
            stopped_pid = None
            load.stop()
            feed.flush()
            wave(feed, rng, sessions=10, tag="after")
            wait_recount(snaps, feed, 90, "the recount after the outage", worker)
            assert worker.alive() and worker.proc is not None and worker.proc.poll() is None
            r = _health(s.worker_metrics_port)
            assert r is not None and r.status_code == 200, r
            assert "exiting with code" not in worker.log_path.read_text(errors="replace")
            # The worker did wait on the full queue through the outage, longer than its loop may stay silent.
            waits = waits_for_room(worker)
            assert waits and max(waits) > STUCK_EXIT_S, f"no wait for room past the stuck limit: {waits}"
            # /metrics and /healthz tell it apart from stuck: rows waiting for room, from the first second on.
            assert all(w > 0 for w in waiting_rows[2:]), f"/metrics during the outage: {waiting_rows}"
            assert set(said[2:]) == {"Kafka"}, f"/healthz's waiting_on during the outage: {said}"
            print(
                json.dumps(
                    {
                        "outage_s": OUTAGE_S,
                        "longest_wait_for_room_s": max(waits),
                        "healthz_200": len(answers),
                        "waiting_rows": max(waiting_rows),
                    }
                )
            )
            # What waited for room reached the changelog whole and in order: a new worker (memory store: it
            # recovers every table from the changelog topics) counts the same, and goes on counting.
            worker.stop()
            again.start()
            wave(feed, rng, sessions=10, tag="again")
            wait_recount(snaps, feed, 90, "a new worker's recount, its tables recovered from the changelog", again)
        finally:
            if stopped_pid is not None:
                os.killpg(stopped_pid, signal.SIGCONT)
            load.done.set()
            snaps.close()
            if worker.alive():
                worker.stop()
            again.stop()
