"""A chdb directory another process holds is named, not reported as chdb's bare "Error initializing
EmbeddedServer: . (BAD_ARGUMENTS)": by our lock for livemetrics processes (InUse), and by the processes
with files open in it for a program that opened chdb without the lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from clickhouse.client import get_client
from livemetrics.holders import InUse
from livemetrics.settings import Settings

pytestmark = pytest.mark.integration


def _holder(code: str) -> subprocess.Popen:
    p = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(code) + "\nprint('ready', flush=True)\nimport sys\nsys.stdin.read()\n",
            "chdb-holder",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "ready"
    return p


def _end(p: subprocess.Popen) -> None:
    p.stdin.close()
    p.wait(30)


@pytest.mark.timeout(120)
def test_a_chdb_directory_opened_without_our_lock_names_the_process(tmp_path):
    d = tmp_path / "chdb-foreign"
    p = _holder(f"import chdb\nconn = chdb.connect({str(d)!r})\nconn.query('SELECT 1')")
    try:
        with pytest.raises(
            RuntimeError,
            match=rf"cannot open the ClickHouse data directory {d}: it is in use by "
            rf"pid {p.pid} \(.*chdb-holder\) \(chdb allows one process",
        ):
            get_client(Settings(clickhouse_dsn=f"chdb://{d}"))
    finally:
        _end(p)


@pytest.mark.timeout(120)
def test_a_chdb_directory_held_by_another_livemetrics_process_is_in_use(tmp_path):
    d = tmp_path / "chdb-ours"
    p = _holder(f"""
        from clickhouse.client import get_client
        from livemetrics.settings import Settings
        get_client(Settings(clickhouse_dsn="chdb://{d}")).query("SELECT 1")""")
    try:
        with pytest.raises(
            InUse, match=rf"the ClickHouse data directory {d} is in use by pid {p.pid} \(.*chdb-holder\)"
        ):
            get_client(Settings(clickhouse_dsn=f"chdb://{d}"))
    finally:
        _end(p)
