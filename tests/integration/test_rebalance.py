"""Rebalances after a SIGKILL are prompt (docs/operations.md): two workers under load, one SIGKILLed (and left
dead, or restarted at once as ``up`` does); every partition is owned by a ready worker within the
session timeout + 10 s, and the live counts then equal a recount of the raw events. A sink SIGKILLed
and restarted gets its partitions within its session timeout + 10 s."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from operations.command import livemetrics_argv
from tests.integration.test_ops_endpoints import samples
from tests.integration.test_streams_live import Feed, Reader, matches, settled, view, wave
from tests.support.servers import WorkerProcess, wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.integration


def readyz(port: int) -> dict | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None


class Load:
    """Waves of sessions from a thread until ``stop()`` (then ``feed.sent`` is final for the recount)."""

    def __init__(self, feed: Feed):
        self.feed, self._stop, self.waves = feed, threading.Event(), 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(14)
        while not self._stop.is_set():
            wave(self.feed, rng, sessions=4, tag=f"l{self.waves}")
            self.waves += 1

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.mark.parametrize(
    "restart",
    [False, pytest.param(True, marks=pytest.mark.long)],  # the 2nd: make test-long
    ids=["survivor-alone", "killed-one-restarted"],
)
def test_the_survivor_owns_every_partition_soon_after_a_sigkill(make_settings, tmp_path, restart):
    s = make_settings(partitions=3, store="rocksdb://")  # the production session timeout and store
    ws = []
    for name in ("w1", "w2"):
        own = s.model_copy(update={"data_dir": tmp_path / name, "worker_metrics_port": free_port()})
        ws.append(WorkerProcess(own, tmp_path, name).start())
    w1, w2 = ws
    p1, p2 = (w.settings.worker_metrics_port for w in ws)
    snaps, feed = Reader(s, "live-metrics"), Feed(s)
    load = None
    try:
        wave(feed, random.Random(1), sessions=2, tag="warm")
        feed.flush()

        def both_ready() -> bool:
            a, b = readyz(p1), readyz(p2)
            return bool(a and b and a["status"] == b["status"] == "ok")

        wait_until(both_ready, 120, interval=0.2, what="both workers ready", alive=lambda: w1.alive() and w2.alive())
        wait_until(lambda: matches(snaps, feed) and settled(snaps), 60, interval=0.2, what="counts before the kill")
        total = readyz(p1)["partitions_assigned"] + readyz(p2)["partitions_assigned"]
        load = Load(feed).start()
        time.sleep(0)  # the load thread runs while the group notices the dead worker
        wait_until(lambda: load.waves >= 3, 30, what="load flowing")
        w1.kill()
        killed = time.monotonic()
        timeline = []
        if restart:  # as `livemetrics up` does: the new process joins while the dead member is still known
            w1.start()

        def survivor_owns_all() -> bool:
            r = readyz(p2)
            r1 = readyz(p1) if restart else None
            timeline.append(
                (
                    round(time.monotonic() - killed, 1),
                    r and (r["status"], r["partitions_assigned"]),
                    r1 and (r1["status"], r1["partitions_assigned"]),
                )
            )
            # every partition owned by a ready worker (the restarted one may still be starting)
            owned = sum(x["partitions_assigned"] for x in (r, r1) if x and x["status"] == "ok")
            return owned == total

        bound = s.worker_session_timeout_s + 10
        wait_until(survivor_owns_all, bound + 60, interval=0.2, what="every partition owned again", alive=w2.alive)
        took = time.monotonic() - killed
        changes = [t for i, t in enumerate(timeline) if i == 0 or t[1:] != timeline[i - 1][1:]]
        assert took <= bound, f"took {took:.1f} s (bound {bound} s); /readyz over time: {changes}\n{w2.log_tail()}"
        if restart:  # and the restarted worker takes its share back (its start-up is not in the bound)
            wait_until(
                lambda: (readyz(p1) or {}).get("status") == (readyz(p2) or {}).get("status") == "ok",
                90,
                interval=0.2,
                what="both workers ready again",
                alive=lambda: w1.alive() and w2.alive(),
            )
        load.stop()
        feed.flush()
        try:
            wait_until(
                lambda: matches(snaps, feed) and settled(snaps),
                60,
                interval=0.2,
                what="live = recount after the kill",
                alive=w2.alive,
            )
        except AssertionError:
            raise AssertionError(
                f"{[view(snaps.latest.get(x)) for x in ('seller-a', 'seller-b')]}\n"
                f"{[feed.recount(x) for x in ('seller-a', 'seller-b')]}\n{w2.log_tail()}"
            ) from None
        print(f"survivor owned all {total} partitions {took:.1f} s after the SIGKILL; /readyz: {changes}")
    finally:
        if load is not None:
            load.stop()
        snaps.close()
        for w in ws:
            w.stop()


def start_sink(settings, log) -> subprocess.Popen:
    return subprocess.Popen(
        livemetrics_argv("sink"),
        env=settings.child_env(),
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_sink_restarted_after_a_sigkill_gets_its_partitions_within_the_session_timeout(make_settings, tmp_path):
    """The restarted sink joins while the dead one is still a member: the group waits for the dead
    member's session to expire (librdkafka's default: 45 s, history stalled that long)."""
    base = make_settings(partitions=3).model_copy(
        update={"clickhouse_dsn": f"chdb://{tmp_path / 'ch'}", "data_dir": tmp_path / "sink-data"}
    )
    first, second = (base.model_copy(update={"sink_ops_port": free_port()}) for _ in range(2))
    feed = Feed(base)
    a = start_sink(first, tmp_path / "sink-a.log")
    b = None
    try:
        wait_until(
            lambda: (readyz(first.sink_ops_port) or {}).get("status") == "ok",
            120,
            interval=0.2,
            what="the first sink ready",
            alive=lambda: a.poll() is None,
        )
        total = readyz(first.sink_ops_port)["partitions_assigned"]
        rng = random.Random(3)
        for i in range(3):
            wave(feed, rng, sessions=5, tag=f"a{i}")
        feed.flush()
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        killed = time.monotonic()
        b = start_sink(second, tmp_path / "sink-b.log")
        for i in range(3):  # events keep coming while the group notices the dead sink
            wave(feed, rng, sessions=5, tag=f"b{i}")
        feed.flush()
        bound = base.consumer_session_timeout_s + 10
        wait_until(
            lambda: (readyz(second.sink_ops_port) or {}).get("partitions_assigned") == total,
            bound + 60,
            interval=0.2,
            what="the restarted sink assigned",
            alive=lambda: b.poll() is None,
        )
        took = time.monotonic() - killed
        assert took <= bound, f"the restarted sink got its partitions {took:.1f} s after the SIGKILL (bound {bound} s)"

        page = base.topic("page-events")

        def stored_all() -> bool:  # lag: high watermark - what ClickHouse holds (sink_offsets), per partition
            text = httpx.get(f"http://127.0.0.1:{second.sink_ops_port}/metrics", timeout=5).text
            lag = {k: v for k, v in samples(text, "livemetrics_sink_lag_events").items() if ("topic", page) in k}
            return len(lag) == base.partitions and not any(lag.values())

        wait_until(stored_all, 60, interval=0.5, what="everything sent stored", alive=lambda: b.poll() is None)
        print(f"restarted sink assigned {took:.1f} s after the SIGKILL")
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(60)
