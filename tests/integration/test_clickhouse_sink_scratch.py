"""The embedded sink's batch files: a sink killed between preparing a batch and writing it leaves its folder
behind; the next sink on the machine removes it, and never a running sink's (real processes, real chdb)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Prepares one batch (embedded, its own chdb directory), prints the Native file's path, then holds the
# prepared batch until its stdin closes (or it is killed) and exits normally.
CHILD = r"""
import sys, clickhouse_connect
from confluent_kafka import Message
from clickhouse import events_json
from clickhouse.sink_batch import Batch
from tests.unit.clickhouse.test_events_json import event
from livemetrics.contract import Page

client = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
b = Batch("alerts")
b.add([Message(topic="lm.page-events", partition=0, offset=i, value=event(page=Page(type="home"))) for i in range(50)])
prepared = events_json.prepare(client, b.heads, b.values, True)
print(prepared.native, flush=True)
sys.stdin.read()
"""


class Sink:
    def __init__(self, tmp: Path, name: str):
        env = {**os.environ, "TMPDIR": str(tmp / "tmp"), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp / f"chdb-{name}")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.native = Path(self.proc.stdout.readline().strip())  # the batch is prepared
        assert self.native.is_file(), f"no batch file {self.native!r}"

    def end(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(60) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(60)


def test_a_killed_sinks_batch_files_are_removed_by_the_next_sink_and_a_running_ones_are_kept(tmp_path):
    (tmp_path / "tmp").mkdir()
    sinks = [killed := Sink(tmp_path, "killed"), running := Sink(tmp_path, "running")]
    try:
        killed.kill()  # between prepare and write: its batch's files stay
        assert killed.native.is_file()
        sinks.append(later := Sink(tmp_path, "later"))  # a sink started afterwards on the same machine
        assert not killed.native.exists(), "the killed sink's batch files are still there"
        assert not killed.native.parent.exists()
        assert running.native.is_file(), "a running sink's prepared batch was removed"
        later.end()
        running.end()
    finally:
        for s in sinks:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(60)
    # each process that ended normally removed its own folder; nothing is left of any of the three
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_starting_sink_removes_ended_sinks_folders_before_any_batch(settings, tmp_path, monkeypatch):
    """At start, not at its first batch (a sink with nothing to store would never clean): the folder of a
    sink that ended and an older version's batch folder untouched for an hour go; a running sink's locked
    folder and a fresh old-style one (an older sink may be writing it now) stay."""
    if not settings.clickhouse_embedded:
        pytest.skip("a ClickHouse server parses the batches itself: the sink writes no files")
    from clickhouse import events_json
    from clickhouse.sink import EventSink
    from livemetrics.process_scratch import MARKER, ProcessScratch

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(events_json, "SCRATCH", ProcessScratch("livemetrics-sink"))  # not this process's own yet

    def folder(name: str, marked: bool = True) -> Path:
        (tmp / name).mkdir()
        (tmp / name / "rows.native").write_bytes(b"x")
        if marked:
            (tmp / name / MARKER).write_text("1\n")
        return tmp / name

    ended = folder("livemetrics-sink.999999.aaaaaaaa")
    running = folder("livemetrics-sink.999998.bbbbbbbb")
    old = folder("livemetrics-sink-cccccccc", marked=False)
    fresh_old = folder("livemetrics-sink-dddddddd", marked=False)
    hours_ago = time.time() - 2 * 3600
    for p in (old / "rows.native", old):
        os.utime(p, (hours_ago, hours_ago))
    fd = os.open(running, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as its sink holds it (another open file description: the sweep's try fails)
    sink = EventSink(settings).start()
    try:
        left = sorted(p.name for p in tmp.iterdir())
    finally:
        sink.stop()
        os.close(fd)
    own = events_json.SCRATCH.path()
    assert left == sorted([running.name, fresh_old.name, os.path.basename(own)])
    assert not ended.exists() and not old.exists()
