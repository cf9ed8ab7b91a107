"""A session report starts from the watermark its seller's previous report read at its end when that was
moments ago (clickhouse/session_reports.py, REUSE_START_S): two ClickHouse queries instead of three, and
still exact when a fold step moved the watermark in between (the check after the query runs it again)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from clickhouse import query, session_fold, session_reports
from clickhouse.client import INSERT_SETTINGS, get_client
from clickhouse.migrate import migrate
from livemetrics.settings import Settings
from operations.bench.queries import chunk

pytestmark = pytest.mark.integration

SELLER = "seller-main"


def test_a_report_right_after_another_reads_the_watermark_once_and_stays_exact(clickhouse_dsn, tmp_path, monkeypatch):
    s = Settings(data_dir=tmp_path, clickhouse_dsn=clickhouse_dsn, clickhouse_database=f"lm_{uuid.uuid4().hex[:10]}")
    migrate(s)
    c, db = get_client(s), s.clickhouse_database
    rng, end_ms = np.random.default_rng(7), int(time.time() * 1000)

    def insert(first: int, n: int, offset: int) -> None:  # the bench's events: sessions of 10, over 30 days
        c.insert_arrow(f"{db}.events", chunk(rng, first, n, SELLER, end_ms, offset), settings=INSERT_SETTINGS)

    def fold_everything() -> None:  # nothing else inserts: the last insert's bucket may be folded
        ((until,),) = c.query(f"SELECT toUInt32(max(inserted)) + 10 FROM {db}.session_updates").result_rows
        session_fold.fold(s, until=int(until))

    insert(0, 3_000, 0)
    # the next insert bucket: rows inserted from now on come after the watermark the fold reaches here
    ((now_ms,),) = c.query("SELECT toUnixTimestamp64Milli(now64(3))").result_rows
    boundary = now_ms // 10_000 * 10 + 10
    time.sleep(boundary - now_ms / 1000 + 0.2)  # the server's clock must pass it: up to 10 s, no signal for that
    session_fold.fold(s, until=boundary)
    insert(3_000, 1_000, 3_000)  # new sessions, and late events of 50 folded ones: more than FEW_LIVE_ROWS
    insert(0, 500, 10_000)

    sent: list[str] = []
    real_query = c.query

    def counted(sql, *args, **kwargs):
        sent.append(sql)
        return real_query(sql, *args, **kwargs)

    monkeypatch.setattr(c, "query", counted)
    monkeypatch.setattr(session_reports, "REUSE_START_S", 3600.0)  # "moments ago", however loaded the machine
    session_reports._seen.clear()
    end = datetime.now(UTC)
    start = end - timedelta(days=31)

    def report() -> list[dict]:
        sent.clear()
        return query.report(s, "offers", SELLER, start, end)["rows"]

    # with chdb the fold is this process's (one process per directory): a start read while it wrote nothing
    # holds until it writes (session_fold.writes), and a report needs no check after its query when it
    # wrote nothing meanwhile
    embedded = s.clickhouse_embedded
    first = report()
    assert len(sent) == (2 if embedded else 3) and first  # where it starts, the report, the check
    assert report() == first
    assert len(sent) == (1 if embedded else 2)  # the report (and the check): it started from the first one's

    # a fold step in between: the report starts from the old watermark (server: the check finds the new
    # one, and it runs again from there; chdb: the fold's writes say it moved, it reads the new one first)
    before = query.folded_to(s)
    fold_everything()
    assert query.folded_to(s) > before
    assert report() == first
    assert len(sent) == (2 if embedded else 4)
    if embedded:
        # the fold writing while the query runs (here: session_folded_join rebuilt, its marker's id new): the
        # report sees the fold's writes, checks, and runs again
        real_run = query.run
        rebuilt: list[str] = []

        def run_during_a_rebuild(settings, name, *args, **kwargs):
            if name == "popular" and not rebuilt:
                rebuilt.append(session_fold.rebuild_states_join(s, query.folded_to(s)))
                sent.clear()  # the rebuild's own queries
            return real_run(settings, name, *args, **kwargs)

        monkeypatch.setattr(query, "run", run_during_a_rebuild)
        assert report() == first
        monkeypatch.setattr(query, "run", real_run)
        assert rebuilt and len(sent) == 3  # the report, the check (the id moved), the report again
        assert report() == first and len(sent) == 1
        return

    # that check read no live rows, and the folded states are in memory (session_folded_join): reused, the
    # lookup there costs the same for any count
    assert report() == first
    assert len(sent) == 2

    # without the table: a start that read no live rows picks the lookup by key in session_state, and is
    # never reused, as the rows may have grown since, however recent it is
    monkeypatch.setattr(s, "session_states_in_memory", False)
    for _ in range(2):
        assert report() == first
        assert len(sent) == 3

    monkeypatch.setattr(session_reports, "REUSE_START_S", 0.0)  # too long ago: it asks again
    assert report() == first
    assert len(sent) == 3
