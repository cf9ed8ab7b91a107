"""One mapping from the event to the events table (contract.STORED), and everything derived from it
covering every column: a field the contract gains is either stored or named as not stored, and then
the getters, what ClickHouse reads, the SELECT, the lax struct and the benchmarks' schema follow."""

from __future__ import annotations

from typing import get_type_hints

import msgspec
import pytest
from msgspec import inspect

from clickhouse import events_json, events_read
from livemetrics.contract import COLUMNS, NOT_STORED, SOURCES, STORED, Event, Payment
from operations.bench.events_arrow import EVENT_SCHEMA


def leaf_paths(cls: type, prefix: str = "") -> list[str]:
    """Every field of ``cls`` as a dotted path, into its objects (a list or a mapping is one field)."""
    out = []
    for f in inspect.type_info(cls).fields:
        t = events_read._plain(f.type)
        if isinstance(t, inspect.StructType):
            out += leaf_paths(t.cls, f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def unmapped(cls: type) -> list[str]:
    """The fields of an event class that no column holds and that are not named as not stored."""
    sources = {p for paths in SOURCES.values() for p in paths}
    return [p for p in leaf_paths(cls) if p not in sources and p not in NOT_STORED]


def test_every_event_field_is_stored_or_named_not_stored():
    assert unmapped(Event) == []
    fields = set(leaf_paths(Event))
    assert {p for paths in SOURCES.values() for p in paths} <= fields  # no column names a field Event lacks
    assert NOT_STORED <= fields  # and nothing stale is listed as not stored


def test_a_field_the_contract_gains_is_caught():
    # what the test above would say if Event (or one of its objects) gained a field nobody mapped
    pay_types, event_types = get_type_hints(Payment, include_extras=True), get_type_hints(Event, include_extras=True)
    payment = msgspec.defstruct("Payment", [(n, pay_types[n]) for n in Payment.__struct_fields__] + [("psp", str, "")])
    names, defaults = Event.__struct_fields__, Event.__struct_defaults__
    required = [(n, event_types[n]) for n in names[: len(names) - len(defaults)]]
    optional = [
        (n, payment | None if n == "payment" else event_types[n], d) for n, d in zip(names[len(required) :], defaults)
    ]
    bigger = msgspec.defstruct("Event", required + optional + [("coupon", str | None, None)])
    assert unmapped(bigger) == ["payment.psp", "coupon"]


def read_paths(reads, prefix: str = "") -> list[str]:
    return [p for r in reads for p in (read_paths(r.fields, f"{prefix}{r.name}.") if r.fields else [prefix + r.name])]


def test_every_derived_mapping_covers_every_column():
    names = [name for name, _, _ in STORED]
    assert [c[0] for c in COLUMNS] == names and [c[1] for c in COLUMNS] == [t for _, t, _ in STORED]
    assert sorted(read_paths(events_read.READ)) == sorted({p for n in names for p in SOURCES[n]})
    assert [c.rsplit(" AS ", 1)[1] for c in events_read.select_columns()] == names
    assert EVENT_SCHEMA.names[: len(names)] == names

    def lax_paths(cls, prefix=""):
        out = []
        for f in inspect.type_info(cls).fields:
            t = events_read._plain(f.type)
            out += lax_paths(t.cls, f"{prefix}{f.name}.") if isinstance(t, inspect.StructType) else [prefix + f.name]
        return out

    assert lax_paths(events_read.SinkEvent) == read_paths(events_read.READ)
    assert events_read.event_structure() in events_json.SELECT


@pytest.mark.parametrize(
    "value,refused",
    [
        (b'{"event_id":"x","type":"t","seller_id":"s","session_id":"q","ts":1,"received_at":2}', False),
        (b'{"event_id":"x","type":"t","seller_id":"s","session_id":"q","ts":1}', True),  # a required field lacks
        (b'{"event_id":"x","type":"t","seller_id":"s","session_id":"q","ts":1,"received_at":2,"seq":"?"}', False),
        (b'{"event_id":"x","type":"t","seller_id":"s","session_id":"q","ts":1,"received_at":2,"page":7}', True),
    ],
    ids=["complete", "no-received_at", "unread-field", "page-not-an-object"],
)
def test_the_lax_struct_refuses_what_the_insert_refuses(value, refused):
    # unread fields (contract.NOT_STORED) are not looked at, by ClickHouse nor by the lax struct
    try:
        msgspec.json.decode(value, type=events_read.SinkEvent)
    except msgspec.ValidationError:
        assert refused
    else:
        assert not refused
