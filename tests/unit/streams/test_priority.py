"""streams/priority.py: the worker's CPU priority (``worker_nice``). Each case runs in a child process of
its own (the test process keeps its priority), in a session of its own as ``livemetrics up`` starts the
worker, with a thread started before the call (Faust's and the libraries' threads may be)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from livemetrics.settings import Settings

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import json, logging, os, resource, sys, threading
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
nice, unprivileged = int(sys.argv[1]), sys.argv[2] == "1"
if unprivileged:  # no CAP_SYS_NICE, and RLIMIT_NICE allows no negative value
    resource.setrlimit(resource.RLIMIT_NICE, (0, 0))
    if os.geteuid() == 0:
        os.setuid(65534)
before = threading.Event()
started = threading.Thread(target=before.wait, daemon=True)
started.start()
was = {"nice": os.getpriority(os.PRIO_PROCESS, 0), "autogroup": open("/proc/self/autogroup").read()}
from streams import priority
applied = priority.apply(nice)
after = threading.Thread(target=before.wait, daemon=True)
after.start()
niceness = {t: os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")}
got = {"applied": applied, "niceness": niceness, "autogroup": open("/proc/self/autogroup").read()}
print(json.dumps({**got, "was": was}))
before.set()
"""


def _child(nice: int, unprivileged: bool = False) -> tuple[dict, str]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(nice), "1" if unprivileged else "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,  # as `livemetrics up` starts its children: the worker leads its session
        check=True,
    )
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


pytestmark = pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="needs Linux's autogroup")


def test_the_workers_threads_and_its_autogroup_get_its_nice_value():
    # The lowest priority: any process may lower its own, so this runs unprivileged (and under `nice`) too.
    got, _ = _child(19)
    assert got["applied"] is True
    assert len(got["niceness"]) >= 3  # the main thread, one started before the call and one after
    assert set(got["niceness"].values()) == {19}
    assert got["autogroup"].strip().endswith("nice 19")


def test_a_priority_refused_leaves_the_worker_as_it_was_and_says_so():
    got, logged = _child(-5, unprivileged=True)
    assert got["applied"] is False
    assert set(got["niceness"].values()) == {got["was"]["nice"]}  # as the test process runs (maybe under `nice`)
    assert got["autogroup"] == got["was"]["autogroup"]
    assert "worker_nice=-5 not applied" in logged and "CAP_SYS_NICE" in logged


def test_zero_leaves_the_priority_alone():
    got, logged = _child(0)
    assert got["applied"] is False and not logged
    assert set(got["niceness"].values()) == {got["was"]["nice"]} and got["autogroup"] == got["was"]["autogroup"]


def test_the_worker_asks_for_a_higher_priority_by_default():
    # The worker's main thread is the live numbers' critical path on a shared machine (BENCHMARKS.md,
    # sixteenth session); 0 would leave it one process's share of a full machine.
    assert Settings().worker_nice < 0
