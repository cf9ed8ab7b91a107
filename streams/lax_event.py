"""The raw events as the worker decodes them: ``contract.Event`` with the same fields, types and defaults,
but no value constraint checked again (``Meta``: patterns, lengths, bounds). The gateway validated every
event before it produced it (``EventIn`` and its rules), so on the raw topics these checks only cost: a
category's slug pattern, the text lengths of a page, ~40 % of an event's decode (~1.2 us of ~3 us, measured
in BENCHMARKS.md, the worker's CPU per event, eleventh session). A valid event decodes to the same values
as ``contract.decode`` gives (tests/unit/streams/test_lax_event.py); the structure is still checked
(types, required fields, literal event and page types, no unknown field in the nested objects), so what is
undecodable for the sink's lax struct (``clickhouse/events_read.py``, which does the same) is for the worker
too, and an event with, say, a malformed category is counted live as history stores it."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from livemetrics import contract


def _lax(tp: Any, made: dict[type, type]) -> Any:
    """``tp`` without ``Annotated`` constraints, its structs rebuilt the same way (same names, fields,
    defaults and struct options)."""
    if get_origin(tp) is Annotated:
        return _lax(get_args(tp)[0], made)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if tp not in made:
            cfg = tp.__struct_config__
            fields: list[Any] = []
            for f in msgspec.structs.fields(tp):
                t = _lax(f.type, made)
                if f.required:
                    fields.append((f.name, t))
                elif f.default_factory is not msgspec.NODEFAULT:
                    fields.append((f.name, t, msgspec.field(default_factory=f.default_factory)))
                else:
                    fields.append((f.name, t, f.default))
            made[tp] = msgspec.defstruct(
                tp.__name__,
                fields,
                omit_defaults=cfg.omit_defaults,
                forbid_unknown_fields=cfg.forbid_unknown_fields,
                array_like=cfg.array_like,
                rename=None,
            )
        return made[tp]
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return Union[tuple(_lax(a, made) for a in args)]  # noqa: UP007 - built from a tuple
    if origin is list:
        return list[_lax(args[0], made)]  # type: ignore[misc]
    if origin is dict:
        return dict[_lax(args[0], made), _lax(args[1], made)]  # type: ignore[misc]
    return tp


LaxEvent: Any = _lax(contract.Event, {})
_decoder = msgspec.json.Decoder(LaxEvent)
decode = _decoder.decode  # bytes -> an event (``msgspec.DecodeError`` if it is not one)
