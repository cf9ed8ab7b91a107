"""The sink's JSON insert (queries/sink_events.sql) in step with the contract, and what the sink does
with a batch ClickHouse refused: find the values that are not one event, renumber the rest."""

from __future__ import annotations

import re
import uuid

from confluent_kafka import Message

from clickhouse import events_json
from clickhouse.columns import KAFKA_COLUMNS
from clickhouse.sink_batch import Batch
from livemetrics.contract import COLUMNS, NOT_STORED, Checkout, Customer, Event, Page, Payment, encode


def _fields(structure: str) -> dict[str, str]:
    """``name Type, ...`` (types may nest parentheses) -> {name: type}."""
    out, depth, start = {}, 0, 0
    for i, ch in enumerate(structure + ","):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            name, _, typ = structure[start:i].strip().partition(" ")
            out[name] = typ.strip()
            start = i + 1
    return out


def _tuple(typ: str) -> dict[str, str]:
    return _fields(typ.removeprefix("Tuple(").removesuffix(")"))


def test_the_insert_names_every_column_of_events():
    # the SELECT gives every column of events by name, in order (the insert names them: sink_events_unseen.sql)
    select = re.search(r"^SELECT\n(.*?)\nFROM input\(", events_json.SELECT, re.S | re.M).group(1)
    *aliased, last = select.strip().splitlines()  # the Kafka position's columns go by their own names
    names = [re.search(r" AS (\w+),$", line).group(1) for line in aliased] + [c.strip() for c in last.split(",")]
    assert names == [c[0] for c in COLUMNS] + list(KAFKA_COLUMNS)
    insert = events_json.unseen_insert_sql("db", "SELECT 1")
    cols = re.search(r"INSERT INTO db\.events \((.*?)\)\s*SELECT", insert, re.S).group(1)
    assert [c.strip() for c in cols.split(",")] == [c[0] for c in COLUMNS] + list(KAFKA_COLUMNS)
    assert "{" not in select  # every piece derived from the contract is filled in ({rows}: per batch)


def test_the_input_structure_reads_the_stored_fields_of_the_contract_event():
    structure = re.search(r"FROM input\('(.*?)'\)", events_json.SELECT, re.S).group(1)
    top = _fields(structure)
    assert list(top)[:4] == ["line", "kafka_topic", "kafka_partition", "kafka_offset"]
    event = _tuple(top["e"])
    stored = [f for f in Event.__struct_fields__ if f not in NOT_STORED]
    assert list(event) == stored
    for obj, cls in (("page", Page), ("checkout", Checkout), ("payment", Payment), ("customer", Customer)):
        assert list(_tuple(event[obj])) == [f for f in cls.__struct_fields__ if f"{obj}.{f}" not in NOT_STORED]
    # the fields the contract requires are nullable, so that a missing one is told from an empty one
    fields = Event.__struct_fields__
    required = fields[: len(fields) - len(Event.__struct_defaults__)]
    assert required and all(event[f].startswith("Nullable(") for f in required)
    assert _tuple(event["checkout"])["total"].startswith("Nullable(")  # no total: no checkout
    assert events_json.SELECT.count("FROM input('") == 1  # embedded chdb swaps this for file()


def event(event_id: str | None = None, **kw) -> bytes:
    return encode(
        Event(
            event_id=event_id or str(uuid.uuid4()),
            type="page_view",
            seller_id="s1",
            session_id="sess-0001",
            ts=1,
            received_at=2,
            **kw,
        )
    )


def batch(*values) -> Batch:
    b = Batch("alerts")
    b.add([Message(topic="lm.page-events", partition=1, offset=100 + i, value=v) for i, v in enumerate(values)])
    return b


def test_unusable_finds_the_values_that_are_not_one_event():
    good = event(page=Page(type="home"))
    two = good + b']\n[1,"lm.page-events",1,999,{"event_id":"x"}'
    bad_uuid = event(event_id="not-a-uuid")
    too_late = event().replace(b'"ts":1,', b'"ts":9223372036854775808,')
    b = batch(good, b"{not json", b'{"x": 1}', two, None, bad_uuid, b"", too_late, good)
    assert events_json.unusable(b.values) == [1, 2, 3, 4, 5, 6, 7]
    assert events_json.position(b.heads[3]) == "lm.page-events[1]@103"


def test_renumber_keeps_everything_but_the_line_number():
    heads = batch(event(), event(), event()).heads
    assert events_json.renumber([heads[0], heads[2]]) == [heads[0], b'[1,"lm.page-events",1,102,']
