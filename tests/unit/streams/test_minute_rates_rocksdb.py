"""The per-minute windowed table on the RocksDB store (in a child process, ``rocksdb_windows_child.py``:
one worker per process, and this process's has the memory store): a window recovered from the changelog, as raw bytes in a
partition's database, is found under its (seller, window) key, registered for expiry once and
expired; the windows set since stay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from livemetrics.settings import Settings


def test_recovered_windows_on_rocksdb_are_found_registered_and_expired(tmp_path):
    env = Settings(store="rocksdb://", data_dir=tmp_path).child_env()
    out = subprocess.run(
        [sys.executable, "-m", "tests.unit.streams.rocksdb_windows_child"],
        env=env,
        cwd=Path(__file__).parents[3],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout[-2000:] + out.stderr[-3000:]
