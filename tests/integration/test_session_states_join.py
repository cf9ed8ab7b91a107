"""The folded session states in memory (``session_folded_join``, migration 014; clickhouse/session_fold.py):
a ClickHouse Join table kept on disk, whose contents come back when chdb opens the directory again, so
that the session reports look the live sessions up there after a restart too, exact, before the fold has
run (the oracle test, test_reports_oracle.py, checks its every fold state and interrupted step)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

# One process per chdb directory: each run of this script opens it, and exits (closing it)
SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    import numpy as np
    from clickhouse import query, session_fold, session_reports
    from clickhouse.client import INSERT_SETTINGS, close_all, get_client
    from clickhouse.migrate import migrate
    from livemetrics.settings import Settings
    from operations.bench.queries import chunk

    d, end_ms, first = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "first"
    s = Settings(data_dir=d, clickhouse_dsn=f"chdb://{d}/chdb", clickhouse_database="lm")
    c, db = get_client(s), s.clickhouse_database
    SELLER = "seller-main"
    if first:
        migrate(s)
        rng = np.random.default_rng(3)

        def insert(start, n, offset):  # the bench's events: sessions of 10, over 30 days
            c.insert_arrow(f"{db}.events", chunk(rng, start, n, SELLER, end_ms, offset), settings=INSERT_SETTINGS)

        insert(0, 3_000, 0)
        ((now_ms,),) = c.query("SELECT toUnixTimestamp64Milli(now64(3))").result_rows
        boundary = now_ms // 10_000 * 10 + 10
        # rows inserted from here on must come after the watermark: the server's clock must pass the
        # bucket's end (up to 10 s; nothing signals it)
        time.sleep(boundary - now_ms / 1000 + 0.2)
        assert session_fold.fold(s, until=boundary) >= 1
        insert(3_000, 500, 3_000)  # live: new sessions, and late events of 40 folded ones
        insert(0, 400, 10_000)
    if sys.argv[3] == "lost":  # before any report: the fold's first round at start (the sink's) syncs it
        out_lost = {"in_memory_before_sync": session_reports._in_memory(s, session_reports._start(s, SELLER))}
        out_lost["steps"] = session_fold.fold(s, until=query.folded_to(s))
    start = session_reports._start(s, SELLER)
    end = datetime.fromtimestamp(end_ms / 1000, UTC) + timedelta(hours=1)
    begin = end - timedelta(days=31)
    out = {
        "watermark": query.folded_to(s),
        "marker": session_fold.join_marker(s),
        "in_memory": session_reports._in_memory(s, start),
        "live_rows": start[1],
        "held": c.query(f"SELECT count() FROM {db}.session_folded_join").result_rows[0][0],
        "states": c.query(f"SELECT count() FROM {db}.session_state").result_rows[0][0],
        "files": c.query(
            f"SELECT data_paths[1] FROM system.tables WHERE database = '{db}' AND name = 'session_folded_join'"
        ).result_rows[0][0],
        "reports": {n: query.report(s, n, SELLER, begin, end, "Europe/Berlin")["rows"] for n in session_reports.POPULAR},
    }
    out["reports"]["funnel"] = query.report(s, "funnel", SELLER, begin, end)["rows"]
    s.session_states_in_memory = False  # the same reports from session_folded
    session_reports._seen.clear()
    out["reports_from_folded"] = {n: query.report(s, n, SELLER, begin, end, "Europe/Berlin")["rows"] for n in session_reports.POPULAR}
    out["reports_from_folded"]["funnel"] = query.report(s, "funnel", SELLER, begin, end)["rows"]
    if sys.argv[3] == "lost":
        out |= out_lost
    close_all()
    print(json.dumps(out))
    """
)


def run(tmp_path, end_ms: int, which: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(end_ms), which], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_states_in_memory_come_back_after_a_restart_and_the_reports_stay_exact(tmp_path):
    import time

    end_ms = int(time.time() * 1000)
    before = run(tmp_path, end_ms, "first")
    assert before["in_memory"] and before["live_rows"] == 90  # in use: 50 new sessions and 40 folded ones live
    assert before["marker"][0] == before["watermark"] > 0
    assert before["held"] == before["states"] + 1  # every folded session, and the marker
    assert before["reports"] == before["reports_from_folded"]
    assert all(before["reports"].values())

    # chdb reopened (the API restarted), no fold run: the table's contents came back from its files
    after = run(tmp_path, end_ms, "again")
    assert after["in_memory"]
    assert (after["marker"], after["held"], after["states"]) == (before["marker"], before["held"], before["states"])
    assert after["reports"] == before["reports"]
    assert after["reports_from_folded"] == before["reports"]


def test_an_entries_file_lost_behind_its_marker_is_noticed_and_rebuilt(tmp_path):
    """A Join table's files are not fsynced: a machine crash can lose an entries file and keep the later
    file of the marker that vouches for it. Its marker counts the sessions it vouches for: reports read
    session_folded instead, and the fold's first round rebuilds the table."""
    import time

    end_ms = int(time.time() * 1000)
    before = run(tmp_path, end_ms, "first")
    assert before["in_memory"]
    files = sorted((tmp_path / "chdb" / before["files"]).glob("*.bin"), key=lambda f: int(f.stem))
    assert len(files) >= 2
    for f in files[:-1]:  # every entries file gone, the newest (the marker's) kept
        f.unlink()
    lost = run(tmp_path, end_ms, "lost")
    assert not lost["in_memory_before_sync"]  # the reports read session_folded
    assert lost["steps"] == 0 and lost["in_memory"]  # rebuilt by the fold's round, nothing to fold
    assert lost["held"] == before["held"] and lost["marker"][0] == before["marker"][0]
    assert lost["reports"] == before["reports"] == lost["reports_from_folded"]
