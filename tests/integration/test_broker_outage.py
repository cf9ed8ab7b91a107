"""The broker SIGKILLed under load, again and again, and restarted on the same data directory and port
(docs/operations.md): no process exits, the gateway answers only 202 or 503 (never 2xx for an event not in
Kafka), the API says live data is delayed while the broker is away, and after each restart the live
numbers equal a recount of the events answered 202 within 30 s; every one of them is in Kafka and,
once, in ClickHouse.

The processes run with their loop watchdog on (``livemetrics/loop_watch.py``; off by default under pytest),
its limits far below the outage (``STUCK_EXIT_S``), and the worker's changelog queue small enough that the
rows of the events it had fetched fill it once the broker is gone (the worker is paused for a moment under load
before each kill, so that it has a backlog to write: ``build_backlog``): the worker's /healthz must answer 200
throughout each outage (waiting on Kafka is not stuck) and no process may exit 70. Before, the worker retried
its changelog writes in a blocking loop while the queue was full and its watchdog ended it (exit 70).
``tests/integration/test_worker_outage_watchdog.py`` stops the broker with SIGSTOP instead.

The first outage comes before any checkout or payment event (it comes after 5,000-10,000 events, and a session's
first two events are page views: the storefronts' first 12,000 events are their 6,000 sessions' first two). So at
the first kill the checkout-events and payment-events partitions have no committed offset, and by the end of that
cycle they hold ~1,200-2,200 events (two loaded runs' commits, twentieth session): the case in which a commit
refused across a rebalance left the group's lag behind for good before 92f02f2 / 84022ad
(``streams/faust_internals.commit_only_accepted``). Every later outage has every partition committed.

``make test`` runs 2 cycles; ``make chaos`` runs more (``LIVEMETRICS_TEST_CHAOS_CYCLES``, outage length
``LIVEMETRICS_TEST_CHAOS_OUTAGE_S``). Figures of each cycle are printed as JSON lines."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from clickhouse.client import get_client
from livemetrics.kafka_config import consumer_config
from livemetrics.settings import RAW_TOPICS
from operations.ports import free_port
from tests.support.outage_load import Storefront, recount
from tests.support.servers import wait_until
from tests.support.services import local_kafka
from tests.support.stack import Stack, module_settings, new_seller
from tests.support.stopped_group import stop_group

pytestmark = pytest.mark.integration

CYCLES = int(os.environ.get("LIVEMETRICS_TEST_CHAOS_CYCLES", "2"))
# Longer than the gateway's delivery timeout (5 s), the old limit of the worker's own writes.
OUTAGE_S = float(os.environ.get("LIVEMETRICS_TEST_CHAOS_OUTAGE_S", "3"))
SELLERS = ("shop-a", "shop-b")
# The watchdog's limits here (defaults: 10 s and 60 s): every outage (the broker's restart alone takes 13 s
# or more) is longer than a loop may stay silent.
STALE_S, STUCK_EXIT_S = 3.0, 8.0
# Changelog rows the worker's producer may hold unacknowledged (default 1,000,000): a batch's worth, so that the
# queue is full when the broker goes and the worker has to wait for room through the outage.
CHANGELOG_QUEUE_ROWS = 100
KILL_ATTEMPTS = 3  # kills per outage until one finds changelog rows waiting (the first, nearly always)
# The worker's pause before each kill: until the gateway acknowledged this many more events (ten queues' worth of
# changelog rows: the worker writes them through its queue for ten acknowledgement rounds or more, so a kill lands
# while rows wait), at most BACKLOG_S (well below the watchdog's STALE_S and the health probe's 2-s timeout).
BACKLOG_EVENTS, BACKLOG_S = 10 * CHANGELOG_QUEUE_ROWS, 1.0


def waits_for_room(worker) -> list[float]:
    """How long each of the worker's waits for room in its full changelog queue lasted (its log says so when
    one is over)."""
    waits = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and "changelog producer queue has room again" in line:
            waits.append(json.loads(line)["waited_s"])
    return waits


def waiting_for_room(port: int) -> bool:
    """The worker's /healthz says changelog rows wait for room in its full changelog queue."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json().get("waiting_on") == "Kafka"
    except httpx.HTTPError:
        return False


def waits_after_kill(port: int, within_s: float = 2.0) -> bool:
    """Changelog rows wait for room within ``within_s`` of the broker's kill (then they wait until it is back)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if waiting_for_room(port):
            return True
        time.sleep(0.05)  # polling interval of /healthz
    return False


def build_backlog(worker_pid: int, acked, events: int, limit_s: float) -> int:
    """Pause the worker (SIGSTOP) until ``acked()`` (the events the gateway acknowledged) has grown by ``events``, or
    ``limit_s`` passed, then resume it; returns by how many it grew. Its next fetches then bring those events at once,
    their changelog rows more than its queue holds."""
    before = acked()
    stop_group(worker_pid)
    deadline = time.monotonic() + limit_s
    try:
        while acked() < before + events and time.monotonic() < deadline:
            time.sleep(0.02)  # polling interval of the storefronts' acknowledgement counts
    finally:
        os.killpg(worker_pid, signal.SIGCONT)
    return acked() - before


class HealthProbe(threading.Thread):
    """Asks the worker's /healthz every half second (as ``up``'s liveness watch does every 2 s) while
    running; keeps every answer that was not 200, and the longest wait for room in the changelog queue
    that an answer told (``waited_s``)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.bad, self.asked, self.waited_s = port, [], 0, 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):  # the probe's period
            self.asked += 1
            try:
                r = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
            except httpx.HTTPError as exc:
                self.bad.append(f"no answer: {exc!r}")
                continue
            if r.status_code != 200:
                self.bad.append(f"{r.status_code} {r.text}")
            elif r.json().get("waiting_on") == "Kafka":
                self.waited_s = max(self.waited_s, r.json()["waiting_s"])

    def stop(self) -> list[str]:
        self.done.set()
        self.join(5)
        return self.bad


def kafka_event_ids(s, deadline_s: float = 30) -> set[str]:
    """Every event id in the raw topics, read to their end offsets."""
    c = Consumer(consumer_config(s, f"test-read-{uuid.uuid4().hex[:8]}"))
    try:
        parts = []
        for t in RAW_TOPICS:
            md = c.list_topics(s.topic(t), timeout=10).topics[s.topic(t)]
            parts += [TopicPartition(s.topic(t), p, 0) for p in md.partitions]
        ends = {(tp.topic, tp.partition): c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        c.assign(parts)
        ids: set[str] = set()
        todo = {k for k, end in ends.items() if end > 0}
        deadline = time.monotonic() + deadline_s
        while todo and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            ids.add(json.loads(m.value())["event_id"])
            if m.offset() + 1 >= ends[(m.topic(), m.partition())]:
                todo.discard((m.topic(), m.partition()))
        assert not todo, f"raw topics not read to their end within {deadline_s} s: {todo}"
        return ids
    finally:
        c.close()


def group_lag(s, group: str) -> int:
    """Raw events not yet committed by consumer group ``group`` (end offsets - committed offsets)."""
    return sum(end - max(committed, 0) for _, committed, end in partition_offsets(s, group))


def partition_offsets(s, group: str) -> list[tuple[str, int, int]]:
    """("topic/partition", committed offset (negative: none), end offset) of each raw partition, for ``group``."""
    c = Consumer(consumer_config(s, group))
    try:
        parts = [TopicPartition(s.topic(t), p) for t in RAW_TOPICS for p in range(s.partitions)]
        return [
            (f"{tp.topic}/{tp.partition}", tp.offset, c.get_watermark_offsets(tp, timeout=10)[1])
            for tp in c.committed(parts, timeout=10)
        ]
    finally:
        c.close()


def worker_offsets(port: int) -> list[str]:
    """The worker's own view of its partitions and commits (its /metrics: end and read offsets, lag from its committed
    offsets, rebalances, changelog rows not yet acknowledged), for a failure's message."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError as exc:
        return [f"no /metrics: {exc!r}"]
    wanted = ("_end_offset", "_read_offset", "_consumer_lag", "_rebalances", "_partitions_assigned", "_changelog_")
    return [
        line for line in text.splitlines() if line.startswith("livemetrics_worker") and any(w in line for w in wanted)
    ]


def drained_after(s, group: str, since: float, deadline_s: float = 60, explain=lambda: "") -> float:
    """Seconds from ``since`` until consumer group ``group`` has committed every raw event; ``explain()`` adds to
    the failure's message."""
    lag = group_lag(s, group)
    while lag and time.monotonic() < since + deadline_s:
        time.sleep(0.2)  # polling interval: the group commits about once a second
        lag = group_lag(s, group)
    if lag:
        behind = [p for p in partition_offsets(s, group) if p[2] > max(p[1], 0)]
        raise AssertionError(
            f"{group} still {lag} events behind {deadline_s} s after the load stopped; (partition, committed, end) "
            f"behind: {behind}\n{explain()}"
        )
    return time.monotonic() - since


def clickhouse_rows(s) -> tuple[set[str], int, int]:
    """The shops' event ids in ClickHouse, their rows, and their distinct Kafka positions."""
    db, shops = s.clickhouse_database, ", ".join(f"'{x}'" for x in SELLERS)
    ids = {
        r[0]
        for r in get_client(s)
        .query(f"SELECT toString(event_id) FROM {db}.events WHERE seller_id IN ({shops})")
        .result_rows
    }
    rows, positions = (
        get_client(s)
        .query(
            f"SELECT count(), uniqExact(type, kafka_partition, kafka_offset) FROM {db}.events WHERE seller_id IN ({shops})"
        )
        .result_rows[0]
    )
    return ids, rows, positions


def live_view(stack: Stack, seller: str, token: str) -> dict:
    snap = stack.live(seller, token)
    return {k: snap[k] for k in ("live", "active_sessions", "purchased_30m", "payment_failures_30m")}


def test_broker_sigkilled_under_load_nothing_lost_and_live_equals_recount(tmp_path, clickhouse_dsn):
    with local_kafka(tmp_path / "kafka") as (bootstrap, broker):
        # Windows longer than any run (make chaos runs for many minutes), so the recount needs no clock.
        s = module_settings(
            bootstrap,
            clickhouse_dsn,
            tmp_path,
            store="rocksdb://",
            broker_outage_tolerance_s=max(300.0, OUTAGE_S + 120),
            worker_metrics_port=free_port(),
            loop_stale_s=STALE_S,
            loop_stuck_exit_s=STUCK_EXIT_S,
            worker_changelog_queue_rows=CHANGELOG_QUEUE_ROWS,
            live_window_s=7200,
            session_timeout_s=7200,
            recent_window_s=7200,
        )
        sellers = {name: new_seller(s, name) for name in ("warmup", *SELLERS)}
        stack = Stack(s, tmp_path, sellers)
        fronts: list[Storefront] = []
        try:
            stack.warm_up()
            token = sellers["warmup"][1]
            # The same sessions go on across the outages: their state is written before and after each one.
            fronts += [
                Storefront(
                    f"{stack.gateway.url}/v1/events",
                    sellers[seller][0],
                    seller,
                    sessions=1500,
                    seed=i,
                    batch=100,
                    pause=0,
                    held=True,
                )
                for i, seller in enumerate(SELLERS * 2)
            ]
            for front in fronts:
                front.start()
            for cycle in range(CYCLES):
                statuses_before = sum((fr.statuses for fr in fronts), start=Counter())
                for front in fronts:
                    front.go()
                # Kill under load: fresh acknowledgements mean changelog rows and deltas are in flight.
                before = sum(len(fr.acked_events()) for fr in fronts)
                wait_until(
                    lambda: sum(len(fr.acked_events()) for fr in fronts) >= before + 5000,
                    30,
                    interval=0.05,
                    what="load before the kill",
                    alive=stack.worker.alive,
                )
                # The scenario needs the worker's changelog queue full when the broker goes: rows it could not hand
                # to the producer then wait through the whole outage (nothing is acknowledged while the broker is
                # away). Killing after a fixed amount of load did not ensure it: in a loaded run the worker had
                # caught up by the kill of outage 2 and never waited. So, with the load on, wait until rows wait for
                # room, kill then, and check that rows wait after the kill; when the wait ended in the moment between
                # (a few batches' acknowledgements), this outage is not the scenario: the broker comes back and is
                # killed again, the load still on. Rows wait for room only when the worker writes more than the queue
                # holds within the broker's acknowledgement time: a worker that keeps up with the load never does (at
                # load 20-30, 60-170 rows in flight against a queue of 300, none waited in 60 s: 3 runs of 18). So
                # before each kill the worker is paused for a moment under load (build_backlog): it comes back to a
                # backlog whose rows overflow its (smaller) queue for several acknowledgement rounds, and it goes on
                # writing them after the kill.
                probe = None
                for attempt in range(1, KILL_ATTEMPTS + 1):
                    backlog = build_backlog(
                        stack.worker.pid,
                        lambda: sum(len(fr.acked_events()) for fr in fronts),
                        BACKLOG_EVENTS,
                        BACKLOG_S,
                    )
                    if probe is None:  # from the first kill on (a later pause delays an answer by at most BACKLOG_S)
                        probe = HealthProbe(s.worker_metrics_port)
                        probe.start()
                    wait_until(
                        lambda: waiting_for_room(s.worker_metrics_port),
                        60,
                        interval=0.02,
                        what="changelog rows waiting for room under load (the worker's queue full)",
                        alive=stack.worker.alive,
                    )
                    os.killpg(broker.pid(), signal.SIGKILL)
                    killed = time.monotonic()
                    if waits_after_kill(s.worker_metrics_port):
                        break
                    assert attempt < KILL_ATTEMPTS, (
                        f"no changelog rows waited after {KILL_ATTEMPTS} kills with the queue full"
                    )
                    print(json.dumps({"cycle": cycle + 1, "kill_attempt": attempt, "rows_waiting_after_kill": False}))
                    broker.start(wait_s=90, quiet=True)
                    acked = sum(len(fr.acked_events()) for fr in fronts)
                    wait_until(  # the load flows again before the next pause (else it builds no backlog)
                        lambda: sum(len(fr.acked_events()) for fr in fronts) >= acked + BACKLOG_EVENTS,
                        30,
                        interval=0.05,
                        what="load after the restart",
                        alive=stack.worker.alive,
                    )
                # While it is away: the API says live data is delayed; the worker keeps running.
                wait_until(
                    lambda: stack.live("warmup", token).get("delayed") is True,
                    OUTAGE_S + 5,
                    interval=0.2,
                    what="the API saying live data is delayed",
                    alive=stack.worker.alive,
                )
                while time.monotonic() < killed + OUTAGE_S:  # the outage itself: the scenario's length
                    assert stack.worker.alive(), f"worker exited during the outage\n{stack.worker.log_tail()}"
                    time.sleep(0.5)  # the outage lasts its set length: a wall-time scenario, no signal
                # ...and at least until the worker has waited for room past the time its loop may stay silent (a
                # blocking wait would have been ended by the watchdog by then), whatever the broker's start takes.
                wait_until(
                    lambda: probe.waited_s > STUCK_EXIT_S,
                    STUCK_EXIT_S + 30,
                    interval=0.2,
                    what=f"the worker's /healthz saying it waits for room past {STUCK_EXIT_S} s",
                    alive=stack.worker.alive,
                )
                starting = time.monotonic()
                broker.start(wait_s=90, quiet=True)
                restarted = time.monotonic()
                probed, not_alive = probe.asked, probe.stop()
                assert stack.worker.alive(), f"worker exited during the outage\n{stack.worker.log_tail()}"
                assert not not_alive, f"worker /healthz during the outage: {not_alive[:3]}\n{stack.worker.log_tail()}"
                acked_at_restart = sum(len(fr.acked_events()) for fr in fronts)
                wait_until(
                    lambda: sum(len(fr.acked_events()) for fr in fronts) > acked_at_restart,
                    30,
                    interval=0.05,
                    what="a 202 after the restart",
                    alive=stack.worker.alive,
                )
                first_202_s = time.monotonic() - restarted
                for front in fronts:  # every batch is retried until acknowledged, then the load pauses
                    assert front.hold(60) and front.gave_up == 0, f"{front.name} did not get its batches acknowledged"
                stopped = time.monotonic()
                answered_503 = sum(fr.statuses[503] for fr in fronts) - statuses_before[503]
                # The backlog left when the load stops (the catch-up after the restart), drained below.
                worker_lag, sink_lag = group_lag(s, s.app_id), group_lag(s, s.sink_group)
                events = {
                    seller: [e for fr in fronts if fr.seller == seller for e in fr.acked_events()] for seller in SELLERS
                }
                try:
                    wait_until(
                        lambda: all(live_view(stack, x, sellers[x][1]) == recount(events[x]) for x in SELLERS),
                        30,
                        interval=0.2,
                        what=f"live = recount after outage {cycle + 1}",
                        alive=stack.worker.alive,
                    )
                except AssertionError as exc:
                    raise AssertionError(
                        f"{exc}\nlive: {[live_view(stack, x, sellers[x][1]) for x in SELLERS]}\n"
                        f"recount: {[recount(events[x]) for x in SELLERS]}\n{stack.worker.log_tail()}"
                    ) from None
                recounted = time.monotonic() - stopped
                # The scenario happened: the worker waited on its full queue through the outage, past the
                # time its loop may stay silent (else a blocking wait would not have shown).
                long_waits = [w for w in waits_for_room(stack.worker) if w > STUCK_EXIT_S]
                assert len(long_waits) >= cycle + 1, f"no wait for room through outage {cycle + 1}: {long_waits}"
                worker_drain_s = drained_after(
                    s,
                    s.app_id,
                    stopped,
                    explain=lambda: "\n".join(
                        [
                            f"worker alive: {stack.worker.alive()}",
                            *worker_offsets(s.worker_metrics_port),
                            stack.worker.log_tail(),
                        ]
                    ),
                )
                assert stack.live("warmup", token).get("delayed") is False
                statuses = sum((fr.statuses for fr in fronts), start=Counter())
                assert set(statuses) <= {202, 503, "network"}, statuses
                print(
                    json.dumps(
                        {
                            "cycle": cycle + 1,
                            "outage_s": round(restarted - killed, 1),
                            "backlog_before_kill": backlog,
                            "worker_healthz_200_during_outage": probed,
                            "worker_waited_for_changelog_room_s": long_waits[-1],
                            "broker_start_s": round(restarted - starting, 1),
                            "first_202_after_restart_s": round(first_202_s, 2),
                            "live_equals_recount_after_load_stop_s": round(recounted, 2),
                            "answered_503": answered_503,
                            "worker_lag_at_load_stop": worker_lag,
                            "worker_drained_s": round(worker_drain_s, 1),
                            "sink_lag_at_load_stop": sink_lag,
                            "acked_events": sum(len(fr.acked_events()) for fr in fronts),
                            "sessions": sum(len({e["session_id"] for e in v}) for v in events.values()),
                        }
                    )
                )
            # Nothing answered 202 is missing from Kafka.
            acked_ids = {e["event_id"] for fr in fronts for e in fr.acked_events()}
            missing = acked_ids - kafka_event_ids(s)
            assert not missing, f"{len(missing)} acknowledged events not in Kafka, e.g. {sorted(missing)[:3]}"
            # History catches up: the sink (in the API process) waited the outages out; each Kafka message once.
            waiting = time.monotonic()
            wait_until(lambda: acked_ids <= clickhouse_rows(s)[0], 120, interval=0.5, what="every 202 in ClickHouse")
            print(json.dumps({"history_caught_up_s": round(time.monotonic() - waiting, 1)}))
            _, rows, positions = clickhouse_rows(s)
            assert rows == positions, f"{rows - positions} Kafka messages stored twice in ClickHouse"
            assert stack.worker.alive(), stack.worker.log_tail()
        finally:
            for front in fronts:
                front.stop()
            stack.close()
