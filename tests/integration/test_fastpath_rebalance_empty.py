"""A worker whose assignment was empty when a rebalance began takes no raw record of its new partitions before
its tables are recovered.

Faust suspends flow at a rebalance only for a worker whose assignment is not empty (``App._on_partitions_revoked``):
a worker that had no partition (more workers than partitions, or one that just joined) keeps flow running. Its
consumer lists the new assignment as active (``Consumer.on_partitions_assigned``) a few awaits before the app
pauses it for the recovery, and a fetch in flight then took the new partitions' records and handed them to the
drain loop, which handled them against tables not yet recovered; on a partition nothing was committed for, the
recovery's seek back to the committed offset skips it, so such records are not read again either.

Here, on a real broker: another member of the app (a process of its own, ``tests/support/fast_member.py``) holds
the one partition; the test's app joins with nothing; the other member leaves, a real rebalance gives the test's
app the partition, and the raw events are produced inside that window (held open by a hook on
``agents.on_rebalance``, which the app awaits before pausing the partitions) until a fetch has come back after
aiokafka buffered them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Producer
from faust.types import TP

from livemetrics.kafka_config import producer_config
from livemetrics.topics import create_topics
from streams import faust_internals
from tests.support.fast_member import build, fast_agent, member_settings, short_fetch_wait

ROOT = Path(__file__).resolve().parents[2]
ROWS = 50


def test_a_worker_with_no_partition_handles_its_new_ones_only_after_their_recovery(make_settings, tmp_path):
    s = make_settings(partitions=1)
    create_topics(s)
    source = s.topic("page-events")
    env = {**os.environ, "LM_TEST_MEMBER_SETTINGS": member_settings(s, tmp_path / "other"), "PYTHONPATH": str(ROOT)}
    member = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fast_member"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert member.stdout is not None
        line = member.stdout.readline()  # blocks until it is ready (or gone: then "")
        assert line.startswith("ready"), f"the other member did not start: {line!r}, exit {member.poll()}"
        handled = _run(s, source, member)
    finally:
        if member.poll() is None:
            member.kill()
        member.wait(30)
    before = [offset for offset, ready in handled if not ready]
    assert not before, f"handled before the tables were recovered: offsets {before}"
    assert sorted(o for o, _ in handled) == list(range(ROWS))  # each once


def _run(s, source: str, member: subprocess.Popen) -> list[tuple[int, bool]]:
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app, topic, _ = build(s)
    handled: list[tuple[int, bool]] = []  # (offset, the tables recovered when it was handled)
    window = {"held": False, "fetches": 0}

    async def handler(messages: list) -> None:
        handled.extend((m.offset, bool(app.tables.actives_ready)) for m in messages)

    def count_fetches() -> None:
        getmany = app.consumer._getmany

        async def counted(active_partitions, timeout):
            try:
                return await getmany(active_partitions=active_partitions, timeout=timeout)
            finally:
                window["fetches"] += 1

        app.consumer._getmany = counted

    fast_agent(app, topic, handler, on_start=count_fetches)

    on_rebalance = app.agents.on_rebalance
    tp = TP(source, 0)

    async def held_on_rebalance(revoked, newly_assigned):
        if tp in newly_assigned and not window["held"]:
            window["held"] = True
            # Inside the window: the partition is listed active, not yet paused. Events nothing was committed for.
            await asyncio.get_running_loop().run_in_executor(None, _produce, s, source)
            buffer = app.consumer._thread._consumer._fetcher._records
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not any(t.topic == source for t in buffer) and not handled:
                await asyncio.sleep(0.01)  # polls aiokafka's buffer (its fetches signal nothing we can await)
            seen = window["fetches"]
            while time.monotonic() < deadline and window["fetches"] < seen + 2:
                await asyncio.sleep(0.01)  # a whole fetch begun after the buffer held them (takes them, or not)
        return await on_rebalance(revoked, newly_assigned)

    app.agents.on_rebalance = held_on_rebalance

    async def run() -> list[tuple[int, bool]]:
        await app.start()
        try:
            deadline = time.monotonic() + 60
            fetch_wait = False
            while time.monotonic() < deadline and not (app.tables.actives_ready and not app.rebalancing):
                fetch_wait = fetch_wait or short_fetch_wait(app, s)
                await asyncio.sleep(0.05)  # polls its first recovery (with nothing assigned)
            assert fetch_wait or short_fetch_wait(app, s)  # before the rebalance under test
            assert app.consumer.assignment() == set(), "the other member should have kept the partition"
            member.terminate()  # it leaves the group: a real rebalance gives this app the partition
            deadline = time.monotonic() + 60
            committed = None
            while time.monotonic() < deadline and committed != ROWS:
                committed = faust_internals.committed_offsets(app.consumer).get(TP(source, 0))
                await asyncio.sleep(0.1)  # polls the committed offset (no event to wait on)
            assert window["held"], "no rebalance gave this app the partition"
            assert committed == ROWS, f"committed {committed}; handled {handled}"
            return handled
        finally:
            await app.stop()

    return asyncio.run(run())


def _produce(s, source: str) -> None:
    p = Producer(producer_config(s))
    for i in range(ROWS):
        p.produce(source, key=b"k%d" % i, value=b"v%d" % i, partition=0)
    assert p.flush(30) == 0
