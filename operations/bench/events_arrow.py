"""Raw events as an Arrow table of the ``events`` schema, for the benchmarks only: ``bench sink``'s
ceiling (the same rows, already columnar, inserted as Arrow) and ``bench queries``' history (built as
columns and inserted through the materialized views). The sink itself lets ClickHouse parse events
(``clickhouse/events_json.py``).

Everything is derived from the contract's ``STORED`` (columns, types, the field each holds) and the
sink's lax ``SinkEvent``; tests/unit/clickhouse/test_columns.py checks the table against the contract's
getters for any event the contract accepts.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa

from clickhouse.columns import KAFKA_COLUMNS, KAFKA_TYPES, MONEY_ARROW
from clickhouse.events_read import SinkEvent, lookup
from livemetrics.contract import MONEY_TYPE, SOURCES, STORED, column_default, source_value


def arrow_type(ch_type: str) -> pa.DataType:
    """The Arrow type we send for a ClickHouse column type (ClickHouse converts on insert)."""
    base = ch_type.removeprefix("LowCardinality(").removesuffix(")") if "LowCardinality" in ch_type else ch_type
    if base.startswith("DateTime64"):
        return pa.timestamp("ms", tz="UTC")
    if base == MONEY_TYPE:
        return MONEY_ARROW
    return {"String": pa.string(), "UUID": pa.string(), "Bool": pa.bool_()}[base]


EVENT_SCHEMA = pa.schema([(n, arrow_type(t)) for n, t, _ in STORED] + list(zip(KAFKA_COLUMNS, KAFKA_TYPES)))
_PATHS = {name: tuple(tuple(p.split(".")) for p in SOURCES[name]) for name, _, _ in STORED}
_RAW = {name for name, _, _ in STORED if any(lookup(p).raw for p in SOURCES[name])}  # kept as msgspec.Raw
_batch_decoder = msgspec.json.Decoder(list[SinkEvent])
_event_decoder = msgspec.json.Decoder(SinkEvent)


def decode_events(values: list[bytes]) -> tuple[list[Any], list[int]]:
    """Decode a batch of raw-topic messages; returns the events and the indexes that were undecodable."""
    try:
        return _batch_decoder.decode(b"[" + b",".join(values) + b"]"), []
    except msgspec.DecodeError:
        events, bad = [], []
        for i, v in enumerate(values):
            try:
                events.append(_event_decoder.decode(v))
            except msgspec.DecodeError:
                bad.append(i)
        return events, bad


def _raw(r: msgspec.Raw) -> str:
    b = bytes(r)
    return "" if not b or b == b"null" else b.decode()


def _values(events: list[Any], paths: tuple[tuple[str, ...], ...], default: Any) -> list[Any]:
    """A column's values (its contract sources, see ``contract.source_value``): the shapes STORED uses in
    comprehensions with attrgetters (a Python call per cell costs ~3x more), any other cell by cell."""
    if len(paths) == 1 and len(paths[0]) <= 2:
        *objects, field = paths[0]
        get = attrgetter(field)
        if not objects:
            return [default if (v := get(e)) is None else v for e in events]
        hold = attrgetter(objects[0])
        return [default if (o := hold(e)) is None or (v := get(o)) is None else v for e in events]
    if len(paths) == 2 and all(len(p) == 2 for p in paths):  # from the first of two objects the event has
        (h1, g1), (h2, g2) = ((attrgetter(o), attrgetter(f)) for o, f in paths)
        return [
            (default if (v := g1(o)) is None else v)
            if (o := h1(e)) is not None
            else (default if (o := h2(e)) is None or (v := g2(o)) is None else v)
            for e in events
        ]
    return [default if (v := source_value(e, paths)) is None else v for e in events]


def _column(events: list[Any], name: str, ch_type: str) -> pa.Array:
    values = _values(events, _PATHS[name], column_default(ch_type))
    if name in _RAW:
        values = [_raw(v) if isinstance(v, msgspec.Raw) else v for v in values]
    if ch_type.startswith("DateTime64"):  # epoch ms as sent: cast, not one datetime per row
        return pa.array(values, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return pa.array(values, arrow_type(ch_type))


def events_table(events: list[Any], topics: list[str], partitions: list[int], offsets: list[int]) -> pa.Table:
    arrays = [_column(events, name, typ) for name, typ, _ in STORED]
    arrays += [pa.array(v, t) for v, t in zip((topics, partitions, offsets), KAFKA_TYPES)]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
