"""Overload protection against a real gateway and broker (producers/gateway/overload.py, worker_lag.py).

One seller flooding a gateway faster than the workers fold made every seller's live numbers lag by the
same backlog. Now, while the worker group's committed offsets are far behind the raw topics' ends, the
sellers sending far over their share get 429 (Retry-After, a body that says why) and the others 202; once
the lag is back under the low mark, everyone gets 202 again. The worker group here is real: a consumer of
the worker's group id (``app_id``) committing offsets as a slow worker would, then catching up."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from livemetrics import keys
from livemetrics.kafka_config import consumer_config, producer_config
from livemetrics.keys import KeyRegistry
from livemetrics.settings import RAW_TOPICS, Settings
from producers.gateway.app import create_gateway
from tests.integration.test_gateway_keys import post, signed
from tests.support import factories as f
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration

HIGH, LOW = 1000, 300
# Windows long enough to hold several of the flood's requests on a loaded machine (a window without any
# would leave the flood out of the last window's heavy sellers), and requests over the 100 events
# (50/s x 2 s) a seller must send in a window to be refused at all.
WINDOW_S = 2.0
FLOOD_BATCH = 200


class WorkerGroup:
    """The worker's consumer group, committing offsets from its own thread: ``per_step`` events per
    partition every 0.1 s (a slow worker; 0: a stopped one whose offsets never move), or up to the topics'
    ends once ``catch_up`` is called."""

    def __init__(self, s: Settings, per_step: int):
        self.consumer = Consumer(consumer_config(s, s.app_id))  # assigned nothing: commits only, never joins
        self.parts = [TopicPartition(s.topic(t), p) for t in RAW_TOPICS for p in range(s.partitions)]
        self.at = dict.fromkeys(range(len(self.parts)), 0)
        self.per_step = per_step
        self.caught_up = threading.Event()
        self.stop = threading.Event()
        self.commit()  # every partition committed at 0: the group exists, far behind what comes
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def ends(self) -> list[int]:
        return [self.consumer.get_watermark_offsets(tp, timeout=5)[1] for tp in self.parts]

    def commit(self) -> None:
        offsets = [TopicPartition(tp.topic, tp.partition, self.at[i]) for i, tp in enumerate(self.parts)]
        self.consumer.commit(offsets=offsets, asynchronous=False)

    def run(self) -> None:
        while not self.stop.wait(0.1):  # a worker commits every second; faster here, the test is short
            ends = self.ends()
            per_step = self.per_step  # set by a test: a stopped worker back
            for i, end in enumerate(ends):
                self.at[i] = end if self.caught_up.is_set() else min(end, self.at[i] + per_step)
            if per_step or self.caught_up.is_set():
                self.commit()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.consumer.close()


class Backlog:
    """Other traffic backing up the worker group: ``per_s`` raw events a second produced to page-events
    from its own thread, so the lag grows past the drain (90 events/s at ``per_step`` 1) however slowly a
    loaded machine serves the test's own requests, which alone may send little more than the drain."""

    def __init__(self, s: Settings, first: int, per_s: int):
        self.s, self.per_s = s, per_s
        self.producer = Producer(producer_config(s))
        self.stop = threading.Event()
        self.put(first)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def put(self, n: int) -> None:
        for i in range(n):
            self.producer.produce(self.s.topic("page-events"), b"{}", partition=i % self.s.partitions)
        assert self.producer.flush(10) == 0

    def run(self) -> None:
        while not self.stop.wait(0.1):  # the pace: a tenth of per_s every 0.1 s
            self.put(self.per_s // 10)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def overload_settings(make_settings, **extra) -> Settings:
    """Settings with this module's small marks and short windows."""
    return make_settings(
        gateway_overload_lag_events=HIGH,
        gateway_overload_clear_events=LOW,
        gateway_overload_check_s=0.2,
        gateway_overload_window_s=WINDOW_S,
        **extra,
    )


def two_sellers(s: Settings) -> tuple[str, object, str, object]:
    """Server keys of a flooding and a small seller, published: (flood, its record, small, its record)."""
    kek = s.key_encryption_key.get_secret_value()
    flood, flood_rec = keys.new_server_key("seller-flood", kek)
    small, small_rec = keys.new_server_key("seller-small", kek)
    keys.publish_all(s, [flood_rec, small_rec])
    return flood, flood_rec, small, small_rec


@pytest.fixture
def overloadable(make_settings):
    """A gateway with small marks and short windows, two sellers' server keys and the worker group."""
    made = []

    def make(per_step: int, **extra):
        s = overload_settings(make_settings, **extra)
        flood, flood_rec, small, small_rec = two_sellers(s)
        group = WorkerGroup(s, per_step)
        registry = KeyRegistry(s).start()
        made.append((group, registry))
        wait_until(lambda: registry.record(flood_rec.key_id) and registry.record(small_rec.key_id), 10, what="keys")
        app = create_gateway(s, registry)
        server = ThreadServer(app).start()
        made.append(server)
        return s, app, server.url, flood, small, group

    yield make
    for thing in reversed(made):
        if isinstance(thing, ThreadServer):
            thing.stop()
        else:
            group, registry = thing
            registry.stop()
            group.close()


def send(url: str, key: str, n: int):
    body = json.dumps({"events": [f.page_view() for _ in range(n)]}).encode()
    return post(url, body, signed(key, body))


def test_a_flooding_seller_gets_429_while_live_processing_is_behind_and_a_small_one_202(overloadable):
    s, app, url, flood, small, group = overloadable(per_step=1)
    accepted = 0
    refusal = None
    small_during = []
    deadline = time.monotonic() + 30  # the lag passes the high mark after ~1k events, then a window
    while time.monotonic() < deadline:
        r = send(url, flood, FLOOD_BATCH)
        if r.status_code == 429:
            refusal = r
            break
        assert r.status_code == 202, r.text
        accepted += FLOOD_BATCH
        r = send(url, small, 1)
        assert r.status_code == 202, r.text
        accepted += 1
    assert refusal is not None, f"the flood was never refused ({accepted} events accepted)"
    error = refusal.json()["error"]
    assert refusal.json()["accepted"] == 0
    assert "live processing is behind by" in error and "seller seller-flood sent" in error, error
    wait = int(refusal.headers["retry-after"])
    assert 1 <= wait <= 30 and f"retry in {wait} s" in error
    # In the same seconds: the small seller's events go in, the flood's do not.
    for _ in range(5):
        r = send(url, small, 1)
        assert r.status_code == 202, r.text
        accepted += 1
        small_during.append(r)
        r = send(url, flood, FLOOD_BATCH)
        assert r.status_code == 429, r.text
    # The workers catch up: once the lag is back under the low mark, both are served again.
    group.caught_up.set()
    back = wait_until(lambda: send(url, flood, FLOOD_BATCH).status_code == 202, 15, what="the flood served again")
    assert back
    accepted += FLOOD_BATCH
    for _ in range(3):
        for key, n in ((small, 1), (flood, FLOOD_BATCH)):
            r = send(url, key, n)
            assert r.status_code == 202, r.text
            accepted += n
    # Nothing accepted is missing, nothing refused went in: page-events holds exactly the accepted events.
    page = [i for i, tp in enumerate(group.parts) if tp.topic == s.topic("page-events")]
    ends = group.ends()
    assert sum(ends[i] for i in page) == accepted


def test_a_draining_backlog_refuses_nobody_not_even_the_only_seller_sending(overloadable):
    """After an outage the workers catch up on a backlog far over the high mark while a seller sends as
    usual, alone (the whole of the gateway's traffic, far over the floor of a tenth of the fold rate): the
    lag shrinks, its sending does not outrun the workers, and it gets 202 throughout, from the backlog down
    to under the low mark. (Before, it was refused from its second window, ~2 s in, until the lag was under
    the low mark.)"""
    s, app, url, big, small, group = overloadable(per_step=0)
    probe = app.state.lag_probe
    backlog = 5000  # what waited in Kafka during the outage
    producer = Producer(producer_config(s))
    for i in range(backlog):
        producer.produce(s.topic("page-events"), json.dumps(f.page_view()).encode(), partition=i % s.partitions)
    assert producer.flush(10) == 0
    wait_until(lambda: probe.latest is not None and probe.latest.lag >= backlog, 10, what="the backlog read")
    group.per_step = 80  # the worker is back: up to 800 events/s per partition, committed every 0.1 s
    batch, every = 60, 0.2  # the seller: 300 events/s, steady
    lags, growths, served = [], [], 0
    deadline = time.monotonic() + 30
    next_at = time.monotonic()
    while (r := probe.latest) is None or r.lag > LOW or served < 2 * WINDOW_S / every:
        assert time.monotonic() < deadline, f"the backlog did not drain: {r}"
        lags.append(r.lag)
        growths.append(r.growth_per_s)
        resp = send(url, big, batch)
        assert resp.status_code == 202, (resp.text, r)
        served += 1
        next_at += every
        time.sleep(max(0.0, next_at - time.monotonic()))  # the seller's steady pace is the point: slower than the fold
    assert max(lags) >= HIGH and min(growths) < 0 and max(growths) <= 0, (lags, growths)
    assert app.events_endpoint.shedder.floor_events() < batch * WINDOW_S / every  # heavy, were it an overload


def test_a_stopped_worker_is_not_an_overload(overloadable):
    """Committed offsets that never move: no worker folds (stopped, dead), the backlog waits in Kafka, and
    refusing the flood would change nothing for anyone: past gateway_overload_stalled_s it is served."""
    s, app, url, flood, small, group = overloadable(per_step=0, gateway_overload_stalled_s=1.0)
    probe = app.state.lag_probe
    deadline = time.monotonic() + 30
    while probe.latest is None or probe.latest.lag < HIGH:
        assert time.monotonic() < deadline, f"no lag of {HIGH} read: {probe.latest}"
        assert send(url, flood, FLOOD_BATCH).status_code in (202, 429)  # refused while it looked moving
    stalled = wait_until(
        lambda: (r := probe.latest) is not None and r.at - r.progressed_at >= 1.0 and r, 10, what="stalled"
    )
    assert stalled.lag >= HIGH
    for _ in range(10):
        r = send(url, flood, FLOOD_BATCH)
        assert r.status_code == 202, r.text
        assert send(url, small, 1).status_code == 202
    more = stalled.lag + 10 * (FLOOD_BATCH + 1)  # all of it is in Kafka, waiting: nobody was refused
    wait_until(lambda: probe.latest.lag >= more, 10, what=f"a lag of {more} read")


def test_a_gateway_of_two_processes_refuses_the_flood_from_the_supervisors_readings(make_settings, tmp_path):
    """``gateway_workers`` 2: the supervisor reads the lag once for both processes (worker_lag.SharedReading);
    each process refuses the flood it sees, and serves the small seller."""
    from operations.command import livemetrics_argv
    from tests.integration.test_gateway_workers import ready, workers_of
    from tests.support.services import free_port

    s = overload_settings(make_settings, host="127.0.0.1", gateway_port=free_port(), gateway_workers=2)
    flood, _, small, _ = two_sellers(s)
    group = WorkerGroup(s, per_step=1)
    with open(tmp_path / "gateway.log", "ab") as out:
        proc = subprocess.Popen(
            livemetrics_argv("gateway"), env=s.child_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{s.gateway_port}"
    backlog: Backlog | None = None
    try:
        wait_until(lambda: ready(url), 60, interval=0.2, what="the gateway ready", alive=lambda: proc.poll() is None)
        wait_until(lambda: len(workers_of(proc)) == 2, 30, what="two worker processes")
        backlog = Backlog(s, first=HIGH - FLOOD_BATCH, per_s=200)  # the flood's first 202 passes the high mark
        refused: list[str] = []
        deadline = time.monotonic() + 30
        while len(refused) < 3 and time.monotonic() < deadline:  # a new connection each: both processes see it
            r = send(url, flood, FLOOD_BATCH)
            assert r.status_code in (202, 429), r.text
            if r.status_code == 429:
                refused.append(r.json()["error"])
                assert send(url, small, 1).status_code == 202
        assert len(refused) == 3, (tmp_path / "gateway.log").read_text()[-3000:]
        assert all("live processing is behind by" in e and "seller seller-flood" in e for e in refused), refused
        log = (tmp_path / "gateway.log").read_text()
        assert log.count("lag comes from the gateway's supervisor") == 2 and "reads the worker group's lag" not in log
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(40)
        if backlog is not None:
            backlog.close()
        group.close()
