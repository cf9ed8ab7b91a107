"""A worker's commit refused because its group rebalanced meanwhile leaves nothing uncommitted behind, on a real
broker (streams/faust_internals.py, ``commit_only_accepted``).

Faust 0.15.3 records a commit's offsets as committed even when aiokafka refused it ("already rebalanced"). A commit
in flight when a rebalance begins ends inside the revocation, after Faust dropped every partition's bookkeeping,
and wrote the refused offset back; the next assignment's seek replaces it only where the broker has a committed
offset. Here the group has none on the partition: the test's app handles its records and its first commit is held
(a hook on the commit, as the changelog's delivery holds it) while another member joins; the test's app, waiting
for that commit in its revocation, misses the rebalance (a short rebalance timeout) and the broker refuses the
commit. The other member takes the partition and never commits (``tests/support/holding_member.py``), then is
killed: the partition comes back to the test's app with no committed offset, and no more message is produced.
Before, the app read the records again from 0, all below the offset it believed committed, so acknowledged none
and committed nothing: the group's lag stayed. Now its commit reaches the partition's end within seconds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from faust.types import TP

from livemetrics.kafka_config import consumer_config, producer_config
from streams import faust_internals
from tests.support.fast_member import build, fast_agent, member_settings, short_fetch_wait

ROOT = Path(__file__).resolve().parents[2]
ROWS = 20
REBALANCE_TIMEOUT_S = 4.0  # how long the broker waits for a member to rejoin (Faust's default: 60 s)
COMMIT_WITHIN_S = 20.0  # the commit timer runs every second (broker_commit_interval)


def test_a_commit_refused_at_a_rebalance_is_made_again_once_the_partition_is_back(make_settings, tmp_path):
    s = make_settings(partitions=1)
    source = s.topic("page-events")
    _produce(s, source)  # before anyone reads: the group has no committed offset on the partition
    env = {
        **os.environ,
        "LM_TEST_MEMBER_SETTINGS": member_settings(s, tmp_path / "other"),
        "LM_TEST_REBALANCE_TIMEOUT_S": str(REBALANCE_TIMEOUT_S),
        "PYTHONPATH": str(ROOT),
    }
    member: list[subprocess.Popen] = []

    def start_member() -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, "-m", "tests.support.holding_member"], env=env, stdout=subprocess.PIPE, text=True
        )
        member.append(p)
        return p

    reader = Consumer(consumer_config(s, s.app_id))  # reads the group's committed offsets; never joins it
    try:
        handled, committed = _run(s, source, start_member, reader)
    finally:
        reader.close()
        for p in member:
            if p.poll() is None:
                p.kill()
            p.wait(30)
    assert sorted(set(handled)) == list(range(ROWS))
    assert committed == ROWS, f"the group's committed offset {committed}, {ROWS} records; handled {handled}"


def _run(s, source: str, start_member, reader: Consumer) -> tuple[list[int], int | None]:
    s.data_dir.mkdir(parents=True, exist_ok=True)
    app, topic, _ = build(s)
    app.conf.broker_rebalance_timeout = REBALANCE_TIMEOUT_S
    tp = TP(source, 0)
    handled: list[int] = []
    release = asyncio.Event()  # the first commit is held until the other member has the partition
    commits: list[float] = []  # when each commit began

    async def handler(messages: list) -> None:
        handled.extend(m.offset for m in messages)

    fast_agent(app, topic, handler)

    async def held() -> None:
        commits.append(time.monotonic())
        if len(commits) == 1:
            await release.wait()

    def group_committed() -> int | None:
        (part,) = reader.committed([TopicPartition(source, 0)], timeout=10)
        return part.offset if part.offset >= 0 else None

    async def run() -> tuple[list[int], int | None]:
        await app.start()
        try:
            assert faust_internals.hook_commit(app.consumer, held)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (len(handled) >= ROWS and commits):
                short_fetch_wait(app, s)
                await asyncio.sleep(0.05)  # polls: the records handled and the first commit begun (held)
            assert sorted(handled) == list(range(ROWS)) and commits, handled
            rebalances = app.rebalancing_count
            # The other member joins: this app, in its revocation, waits for the held commit and misses the rebalance.
            other = start_member()
            loop = asyncio.get_running_loop()
            line = await loop.run_in_executor(None, _ready_line, other)
            assert line.startswith("ready") and f" {source}:0" in line, f"the other member did not take it: {line!r}"
            assert app.rebalancing_count > rebalances, "no rebalance began in this app"
            other.kill()  # it never committed; the partition comes back to this app once the broker drops it
            release.set()  # the commit goes now, with a generation the group has left behind
            handled.clear()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                tp in app.consumer.assignment() and app.tables.actives_ready and not app.rebalancing
            ):
                await asyncio.sleep(0.1)  # polls the assignment (no event says "the partition is back")
            assert tp in app.consumer.assignment(), "the partition did not come back to the test's app"
            back = time.monotonic()
            committed = await loop.run_in_executor(None, group_committed)
            while time.monotonic() < back + COMMIT_WITHIN_S and committed != ROWS:
                await asyncio.sleep(0.2)  # polls the broker's committed offset (the commit timer runs every second)
                committed = await loop.run_in_executor(None, group_committed)
            return list(handled), committed
        finally:
            release.set()  # else its revocation would wait for the held commit for ever
            await app.stop()

    return asyncio.run(run())


def _ready_line(member: subprocess.Popen) -> str:
    """The member's ``ready`` line (the first line it prints that is one), or what ended its output."""
    assert member.stdout is not None
    lines = []
    for line in member.stdout:  # ends when the member does
        if line.startswith("ready"):
            return line
        lines.append(line)
    return f"exited {member.wait()} after {lines[-5:]}"


def _produce(s, source: str) -> None:
    p = Producer(producer_config(s))
    for i in range(ROWS):
        p.produce(source, key=b"k%d" % i, value=uuid.uuid4().bytes, partition=0)
    assert p.flush(30) == 0
