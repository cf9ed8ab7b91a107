"""What the sink reads of a raw event and how it makes a row of it, derived from the contract's
``STORED`` (each column of ``events`` with the Event field it holds) and the contract's structs:

- ``READ``: the Event fields some column holds, in the contract's order, each with the type ClickHouse
  reads it as (the column's, without LowCardinality; times as epoch ms). Read as Nullable, so that a
  missing one is told from an empty one: the fields the contract requires (the insert refuses an event
  without them), and the presence marker of an object that a column takes "from the first object the
  event has" (a checkout always has a total: no total, no checkout).
- ``event_structure()``, ``select_columns()``, ``required_missing()``: the pieces of
  ``queries/sink_events.sql`` that name fields and columns (``events_json`` fills them in).
- ``SinkEvent``: the same fields as a lax msgspec struct (no constraint checked again: the gateway
  validated every event; free-form JSON kept raw), for the sink to tell which values ClickHouse would
  refuse (``events_unusable``) and for the benchmarks' Arrow tables.

Fields that no column holds (``contract.NOT_STORED``) are not read at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import inspect

from livemetrics.contract import MONEY_TYPE, SOURCES, STORED, Event


@dataclass(frozen=True)
class Read:
    """One field the sink reads: a value (``ch_type``) or an object (``fields``)."""

    name: str
    ch_type: str = ""
    nullable: bool = False
    raw: bool = False  # free-form JSON (a list or an object): kept as its JSON text
    fields: tuple[Read, ...] = ()


def _plain(t: Any) -> Any:
    """A contract field's type without its metadata and without ``| None``."""
    if isinstance(t, inspect.Metadata):
        return _plain(t.type)
    if isinstance(t, inspect.UnionType):
        (only,) = [x for x in t.types if not isinstance(x, inspect.NoneType)]
        return _plain(only)
    return t


def _fields(cls: type) -> tuple[inspect.Field, ...]:
    return inspect.type_info(cls).fields  # type: ignore[attr-defined]


def _read_type(ch_type: str) -> str:
    base = ch_type.removeprefix("LowCardinality(").removesuffix(")") if "LowCardinality" in ch_type else ch_type
    return "Int64" if base.startswith("DateTime64") else base  # the gateway's epoch milliseconds


def _column_types() -> dict[str, str]:
    """Every source path -> the type it is read as."""
    return {path: _read_type(typ) for name, typ, _ in STORED for path in SOURCES[name]}


def _struct_at(path: str) -> type:
    cls: type = Event
    for name in path.split("."):
        (f,) = [f for f in _fields(cls) if f.name == name]
        t = _plain(f.type)
        if not isinstance(t, inspect.StructType):
            raise ValueError(f"contract.STORED: {path} is not an object of Event")
        cls = t.cls
    return cls


def _markers() -> dict[str, str]:
    """Object path -> its presence marker: the first field it requires that is not free-form JSON; for
    every object a column takes "from the first object the event has" other than the last one."""
    out = {}
    for name, _, _ in STORED:
        for path in SOURCES[name][:-1]:
            if "." not in path:
                raise ValueError(f"contract.STORED: {name} takes its value from alternatives of a top-level field")
            obj = path.rsplit(".", 1)[0]
            out[obj] = next(
                f.name
                for f in _fields(_struct_at(obj))
                if f.required and not isinstance(_plain(f.type), (inspect.ListType, inspect.DictType))
            )
            if f"{obj}.{out[obj]}" not in _column_types():  # only stored fields are read
                raise ValueError(f"contract.STORED: {obj}.{out[obj]}, the presence marker of {obj}, is not stored")
    return out


MARKERS = _markers()


def _read(cls: type, prefix: str, types: dict[str, str]) -> tuple[Read, ...]:
    out = []
    for f in _fields(cls):
        path, t = prefix + f.name, _plain(f.type)
        if isinstance(t, inspect.StructType):
            inner = _read(t.cls, path + ".", types)
            if inner:
                out.append(Read(f.name, fields=inner))
        elif path in types:
            nullable = (not prefix and f.required) or MARKERS.get(prefix.rstrip(".")) == f.name
            out.append(Read(f.name, types[path], nullable, isinstance(t, (inspect.ListType, inspect.DictType))))
    return tuple(out)


READ = _read(Event, "", _column_types())


def lookup(path: str) -> Read:
    """The ``Read`` of a dotted path of Event."""
    reads = READ
    for name in path.split("."):
        (r,) = [r for r in reads if r.name == name]
        reads = r.fields
    return r


def _structure(r: Read) -> str:
    if r.fields:
        return "Tuple(" + ", ".join(f"{f.name} {_structure(f)}" for f in r.fields) + ")"
    return f"Nullable({r.ch_type})" if r.nullable else r.ch_type


def event_structure() -> str:
    """The ClickHouse type an event is read as: a named tuple of every field read."""
    return _structure(Read("e", fields=READ))


def _value(path: str) -> str:
    return f"assumeNotNull(e.{path})" if lookup(path).nullable else f"e.{path}"


def select_columns() -> list[str]:
    """One ``<expression> AS <column>`` per column of ``events`` (without the Kafka position)."""
    out = []
    for name, typ, _ in STORED:
        *firsts, last = SOURCES[name]
        expr = _value(last)
        for path in reversed(firsts):  # the first object the event has
            obj = path.rsplit(".", 1)[0]
            expr = f"if(e.{obj}.{MARKERS[obj]} IS NULL, {expr}, {_value(path)})"
        if typ.startswith("DateTime64"):
            expr = f"fromUnixTimestamp64Milli({expr}, 'UTC')"
        out.append(f"{expr} AS {name}")
    return out


def required_missing() -> str:
    """True for an event that lacks a field the contract requires."""
    return " OR ".join(f"e.{r.name} IS NULL" for r in READ if r.nullable and not r.fields)


# --- the same fields as a lax struct ------------------------------------------------------------
_PYTHON = {"String": str, "UUID": str, "Int64": int, "Bool": bool, MONEY_TYPE: Decimal}


def _lax(name: str, reads: tuple[Read, ...], top: bool) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any, Any] | tuple[str, Any]] = []
    for r in reads:
        if r.fields:
            fields.append((r.name, _lax(name + r.name.title(), r.fields, False) | None, None))
        elif r.raw:
            fields.append((r.name, msgspec.Raw, msgspec.Raw()))
        elif top and r.nullable:
            fields.append((r.name, _PYTHON[r.ch_type]))  # required: decoding fails without it, as the insert
        else:
            fields.append((r.name, _PYTHON[r.ch_type] | None, None))  # null or missing: the default
    required = [f for f in fields if len(f) == 2]
    return msgspec.defstruct(name, required + [f for f in fields if len(f) == 3], gc=False)


SinkEvent = _lax("SinkEvent", READ, True)
"""``contract.Event`` as the sink reads it: the fields read, none checked again."""
