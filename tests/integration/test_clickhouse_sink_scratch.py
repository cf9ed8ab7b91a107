"""The embedded sink's batch files: a sink killed between preparing a batch and writing it leaves its folder
behind; the next sink on the machine removes it, and never a running sink's (real processes, real chdb)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
