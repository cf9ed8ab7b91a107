"""livemetrics.process_scratch: only a directory whose owner has provably ended is removed."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from livemetrics.process_scratch import MARKER, ProcessScratch, remove_dead


def test_only_unlocked_directories_with_the_marker_are_removed(tmp_path: Path):
    dead = tmp_path / "lm-x.1.dead"
    dead.mkdir()
    (dead / MARKER).write_text("1\n")
    (dead / "batch").write_bytes(b"x" * 100)
    being_made = tmp_path / "lm-x.2.new"  # made this instant: not yet locked and marked
    being_made.mkdir()
    other_prefix = tmp_path / "lm-y.3.other"
    other_prefix.mkdir()
    (other_prefix / MARKER).write_text("3\n")
    old_style = tmp_path / "lm-x-abcdefgh"  # an older version's per-batch folder: no owner to ask
    old_style.mkdir()
    held = tmp_path / "lm-x.4.held"
    held.mkdir()
    (held / MARKER).write_text("4\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY);"
         "fcntl.flock(fd, fcntl.LOCK_EX); print(flush=True); sys.stdin.read()", str(held)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        holder.stdout.readline()  # it holds the lock
        assert remove_dead(str(tmp_path), "lm-x") == [str(dead)]
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm-x-abcdefgh", "lm-x.2.new", "lm-x.4.held", "lm-y.3.other"]
    assert remove_dead(str(tmp_path), "lm-x") == [str(held)]  # its holder has ended now


def test_a_process_makes_its_own_locked_directory_again_after_it_was_removed(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    scratch = ProcessScratch("lm-z")
    first = scratch.mkdtemp(prefix="batch-")
    own = os.path.dirname(first)
    assert os.path.basename(own).startswith(f"lm-z.{os.getpid()}.")
    fd = os.open(own, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("this process's directory is not locked")
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
    assert remove_dead(str(tmp_path), "lm-z") == []
    subprocess.run(["rm", "-rf", own], check=True)  # a tmp cleaner
    second = scratch.mkdtemp(prefix="batch-")
    assert os.path.isdir(second) and os.path.dirname(second) != own
    scratch._at_exit()
    assert list(tmp_path.iterdir()) == []
