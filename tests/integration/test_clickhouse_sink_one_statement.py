"""Embedded, the sink stores a batch its time trigger cut (fewer rows than sink_batch_rows) in one statement,
parsed inside its insert, and a full batch (a sink behind) in two steps with a Native file between: both
store the same rows in every table, and the one statement skips a value that is not an event as the two
steps do, leaving no scratch file behind."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import Future
from pathlib import Path

import pytest
from confluent_kafka import Message

from clickhouse import events_json
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from clickhouse.sink_batch import Batch
from clickhouse.sink_store import BatchStore
from livemetrics.settings import Settings
from tests.integration.test_clickhouse_events_json import good

pytestmark = pytest.mark.integration

TABLES = ("events", "rollup_traffic_hourly", "rollup_pages_hourly", "session_updates", "sink_offsets")


def settings(clickhouse_dsn: str, tmp_path: Path, batch_rows: int) -> Settings:
    s = Settings(
        data_dir=tmp_path,
        clickhouse_dsn=clickhouse_dsn,
        clickhouse_database=f"lm_{uuid.uuid4().hex[:10]}",
        sink_batch_rows=batch_rows,
    )
    migrate(s)
    return s


def batch_of(values: list[bytes]) -> Batch:
    batch = Batch("alerts")
    batch.add([Message(topic="t.page-events", partition=1, offset=500 + i, value=v) for i, v in enumerate(values)])
    return batch


def store(s: Settings, batch: Batch) -> tuple[events_json.Prepared, int]:
    """The sink's two steps through its BatchStore, as its threads run them."""
    bs = BatchStore(s)
    prepared = bs.prepare(batch)
    done: Future = Future()
    done.set_result(prepared)
    return prepared, bs.write(batch, done)


def table_rows(s: Settings, table: str) -> list[bytes]:
    """Every row of ``table`` as text (aggregate states included), sorted; one insert made one part each."""
    db = s.clickhouse_database
    # session_updates' rows are labelled with the server's clock when the view ran: the rest is compared
    columns = "* EXCEPT inserted" if table == "session_updates" else "*"
    rows = get_client(s).raw_query(f"SELECT {columns} FROM {db}.{table} FORMAT TSV")
    return sorted(rows.splitlines())


def scratch_batches() -> list[str]:
    path = events_json.SCRATCH.path()
    return [n for n in os.listdir(path) if n.startswith("batch-")]


def test_a_time_cut_batch_is_one_statement_and_stores_what_two_steps_store(clickhouse_dsn, tmp_path):
    values = good(3000)
    one = settings(clickhouse_dsn, tmp_path / "one", batch_rows=50_000)  # 3,000 < 50,000: cut by time
    two = settings(clickhouse_dsn, tmp_path / "two", batch_rows=3000)  # a full batch: the sink is behind
    prepared_one, rows_one = store(one, batch_of(values))
    prepared_two, rows_two = store(two, batch_of(values))
    assert prepared_one.native is None  # nothing parsed before the insert: one statement
    assert prepared_two.native is not None and prepared_two.native.endswith(".native")
    assert rows_one == rows_two == 3000
    for table in TABLES:
        got = [table_rows(s, table) for s in (one, two)]
        assert got[0] == got[1] and got[0], table
    assert len(table_rows(one, "events")) == 3000
    assert scratch_batches() == []  # the one statement's lines file went with it; the Native file with its write


def test_one_statement_skips_a_value_that_is_not_an_event_and_stores_the_rest(clickhouse_dsn, tmp_path):
    s = settings(clickhouse_dsn, tmp_path, batch_rows=50_000)
    values = good(10)
    values[4] = b"{not json"
    batch = batch_of(values)
    refused: list = []
    prepared = events_json.prepare(get_client(s), batch.heads, batch.values, True, one_statement=True)
    rows = events_json.write(
        get_client(s),
        s.clickhouse_database,
        prepared,
        {"insert_deduplication_token": batch.token()},
        True,
        on_refused=refused.extend,
    )
    assert rows == 9 and [r.head for r in refused] == [b'[4,"t.page-events",1,504,']
    stored = get_client(s).query(f"SELECT kafka_offset FROM {s.clickhouse_database}.events ORDER BY kafka_offset")
    assert [r[0] for r in stored.result_rows] == [500 + i for i in range(10) if i != 4]
    assert scratch_batches() == []
