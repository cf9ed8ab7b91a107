"""The sink's JSON insert on the real engine: every column equals the contract's getter for any event
the contract accepts; a refused batch writes nothing; a value cannot smuggle in extra rows. Each holds for
both ways embedded stores a batch: two steps (a Native file between) and one statement."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, timezone
from pathlib import Path

import msgspec
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from confluent_kafka import Message
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from clickhouse.client import EVENTS_INSERT_SETTINGS, get_client
from clickhouse.events_json import insert_events, server_insert_sql
from clickhouse.migrate import migrate
from clickhouse.sink_batch import Batch
from livemetrics.contract import COLUMNS, Event, encode
from livemetrics.settings import Settings
from tests.unit.clickhouse.test_columns import _same
from tests.unit.clickhouse.test_columns import events as contract_events

pytestmark = pytest.mark.integration

_topics = itertools.count()
NOW_MS = int(time.time() * 1000)
DAY_MS = 86_400_000
# events that arrived recently (the TTLs count from received_at: older rows are past the table's TTL, and
# their personal data past its own), sent at any time around it
recent_events = st.tuples(contract_events, st.integers(-10 * DAY_MS, DAY_MS), st.integers(-10 * DAY_MS, 0)).map(
    lambda p: msgspec.structs.replace(p[0], ts=NOW_MS + p[1], received_at=NOW_MS + p[2])
)


# database -> whether ``insert`` stores its batches in one statement (the fixture's parameter); two steps for
# the databases of other modules' tests, which import ``insert``
ONE_STATEMENT: dict[str, bool] = {}


@pytest.fixture(params=["two-steps", "one-statement"])
def ch(request, clickhouse_dsn, tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path, clickhouse_dsn=clickhouse_dsn, clickhouse_database=f"lm_{uuid.uuid4().hex[:10]}")
    migrate(s)
    ONE_STATEMENT[s.clickhouse_database] = request.param == "one-statement"
    return s


def insert(s: Settings, values: list[bytes | None], topic: str | None = None) -> str:
    topic = topic or f"t{next(_topics)}.page-events"
    batch = Batch("alerts")
    batch.add([Message(topic=topic, partition=3, offset=1000 + i, value=v) for i, v in enumerate(values)])
    insert_events(
        get_client(s),
        s.clickhouse_database,
        batch.heads,
        batch.values,
        {**EVENTS_INSERT_SETTINGS, "insert_deduplication_token": batch.token()},
        s.clickhouse_embedded,
        one_statement=ONE_STATEMENT.get(s.clickhouse_database, False),
    )
    return topic


def count(s: Settings, table: str = "events") -> int:
    return get_client(s).query(f"SELECT count() FROM {s.clickhouse_database}.{table}").result_rows[0][0]


def test_columns_equal_the_contract_getters(ch):
    names = [c[0] for c in COLUMNS]

    @hsettings(max_examples=30, deadline=None)
    @given(st.lists(recent_events, min_size=1, max_size=5))
    def check(evs: list[Event]):
        # fresh event ids: the sink stores a (seller_id, event_id) once, and hypothesis repeats examples
        evs = [msgspec.structs.replace(e, event_id=str(uuid.uuid4())) for e in evs]
        topic = insert(ch, [encode(e) for e in evs])
        rows = (
            get_client(ch)
            .query(
                f"SELECT {', '.join(names)}, kafka_partition, kafka_offset FROM {ch.clickhouse_database}.events "
                "WHERE kafka_topic = {t:String} ORDER BY kafka_offset",
                parameters={"t": topic},
            )
            .result_rows
        )
        assert len(rows) == len(evs)
        for i, (row, e) in enumerate(zip(rows, evs)):
            assert row[-2:] == (3, 1000 + i)
            for name, got, (_, _, get) in zip(names, row, COLUMNS):
                if hasattr(got, "tzinfo") and got.tzinfo is None:
                    got = got.replace(tzinfo=UTC)  # DateTime64(3, 'UTC') read back naive
                want = get(e)
                same = got == want if isinstance(got, uuid.UUID) else _same(name, got, want)
                assert same, (name, got, want)

    check()


def good(n: int) -> list[bytes]:
    return [
        encode(
            Event(
                event_id=str(uuid.uuid4()),
                type="page_view",
                seller_id="s1",
                session_id=f"sess-{i:06d}",
                ts=NOW_MS + i,
                received_at=NOW_MS + i,
            )
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "bad",
    [
        b"{not json",
        b'{"event_id": "%s"}' % str(uuid.uuid4()).encode(),
        None,
        b'{"event_id":"not-a-uuid","type":"page_view","seller_id":"s","session_id":"x","ts":1,"received_at":1}',
    ],
    ids=["not-json", "only-an-event-id", "no-value", "bad-uuid"],
)  # stable: pytest-xdist collects twice
def test_a_refused_batch_writes_nothing(ch, bad):
    with pytest.raises(DatabaseError):
        insert(ch, good(5000) + [bad])
    assert count(ch) == 0 and count(ch, "rollup_traffic_hourly") == 0 and count(ch, "sink_offsets") == 0
    insert(ch, good(5000))
    assert count(ch) == 5000 and count(ch, "rollup_traffic_hourly") > 0 and count(ch, "sink_offsets") == 1


def test_a_value_cannot_add_rows_with_made_up_kafka_positions(ch):
    forged = encode(
        Event(
            event_id=str(uuid.uuid4()),
            type="page_view",
            seller_id="s1",
            session_id="sess-forged",
            ts=NOW_MS,
            received_at=NOW_MS,
        )
    )

    def carrier(line: int) -> bytes:  # one message, two documents: the second numbered as the next line
        return good(1)[0] + b'],\n[%d,"t.page-events",3,999999999,' % (line + 1) + forged

    for values in ([carrier(0)], good(3) + [carrier(3)], [carrier(0)] + good(3)):
        with pytest.raises(DatabaseError):
            insert(ch, values)
    assert count(ch) == 0 and count(ch, "sink_offsets") == 0
    insert(ch, good(3))
    assert count(ch) == 3


def test_a_batch_larger_than_a_default_block_is_still_one_block_and_deduplicated(ch):
    values = good(70_000)  # ClickHouse's default max_block_size is 65,409 rows
    insert(ch, values, topic="t.page-events")
    insert(ch, values, topic="t.page-events")  # the same offsets: a retry of the same batch
    assert count(ch) == 70_000
    parts = (
        get_client(ch)
        .query(
            f"SELECT count() FROM system.parts WHERE database = '{ch.clickhouse_database}' AND table = 'events' AND active"
        )
        .result_rows[0][0]
    )
    assert parts == 1


def test_the_server_statement_parses_on_the_real_engine(ch):
    # The server path (a request body read by input()) cannot run on embedded chdb; the statement it
    # sends is at least checked by the same ClickHouse version's parser.
    ast = get_client(ch).command("EXPLAIN AST " + server_insert_sql(ch.clickhouse_database, 3))
    text = ast if isinstance(ast, str) else "\n".join(map(str, ast))
    assert text.startswith("InsertQuery") and "Function input" in text
    assert f"Identifier {ch.clickhouse_database}" in text and "Identifier events" in text
