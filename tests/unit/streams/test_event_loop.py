"""`livemetrics worker` runs its event loops on uvloop (``streams/app.py::use_uvloop``, called by
``operations/processes.py::worker`` before Faust makes any): the main loop Faust's worker runs, and the one
mode's ``ServiceThread`` makes for the consumer's thread (``asyncio.new_event_loop``). Checked in a child
process (the policy is process-wide; the tests' own loops stay asyncio's), with Faust's start replaced by a
report of the loops it would run, and no broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from livemetrics.settings import Settings
from tests.support.services import free_port

CHILD = """
import asyncio
import faust
from livemetrics.settings import get_settings
from operations import processes
from streams import app as streams_app

processes.topics_created = lambda *args, **kwargs: True  # no broker: the topics are not the point here

def report(worker):
    main = worker.loop
    thread = asyncio.new_event_loop()  # as mode's ServiceThread makes the consumer thread's
    print("LOOPS", type(main).__module__, type(thread).__module__, worker.app is streams_app.app)
    thread.close()

faust.Worker.execute_from_commandline = report
processes.worker(get_settings())
"""


def test_the_worker_runs_its_event_loops_on_uvloop(tmp_path):
    env = Settings(
        store="memory://", data_dir=tmp_path / "worker", worker_nice=0, worker_metrics_port=free_port()
    ).child_env()
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        cwd=Path(__file__).parents[3],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    loops = [line for line in out.stdout.splitlines() if line.startswith("LOOPS")]
    assert loops == ["LOOPS uvloop uvloop True"], out.stdout[-2000:] + out.stderr[-2000:]


def test_this_process_loops_stay_asyncio():
    """The tests build the worker in their own process (``build_worker``): that alone sets no policy."""
    loop = asyncio.new_event_loop()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
