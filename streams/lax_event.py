"""The raw events as the worker decodes them: ``contract.Event`` with the same fields, types, defaults and
bounds (lengths, ranges: what bounds a row's size, docs/live-semantics.md), but no pattern checked again.
The gateway validated every event before it produced it (``EventIn`` and its rules), so on the raw topics
the patterns only cost: a page view's category or offer slug is a regular expression matched per event,
~40 % of its decode (~1.1 us of ~2.8 us; BENCHMARKS.md, the worker's CPU per event, eleventh session). A
valid event decodes to the same values as ``contract.decode`` gives
(tests/unit/streams/test_worker_cpu_shortcuts.py); the structure is still checked (types, required fields,
literal event and page types, no unknown field in the nested objects). An event that breaks a pattern can
only come from a writer past the gateway (the raw topics' ACLs); the sink's lax struct
(``clickhouse/events_read.py``) stores it, and the worker now counts it live too instead of skipping it."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from livemetrics import contract


def _lax(tp: Any, made: dict[type, type]) -> Any:
    """``tp`` without ``Annotated`` constraints, its structs rebuilt the same way (same names, fields,
    defaults and struct options)."""
    if get_origin(tp) is Annotated:
        base, *metas = get_args(tp)
        kept = [_without_pattern(m) for m in metas]
        kept = [m for m in kept if m is not None]
        return Annotated[(_lax(base, made), *kept)] if kept else _lax(base, made)
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


_BOUNDS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length")


def _without_pattern(meta: Any) -> Any:
    """``meta`` without its pattern (None if nothing else is left to check); other annotations as they are."""
    if not isinstance(meta, msgspec.Meta) or meta.pattern is None:
        return meta
    bounds = {k: getattr(meta, k) for k in _BOUNDS if getattr(meta, k) is not None}
    return msgspec.Meta(**bounds) if bounds else None


LaxEvent: Any = _lax(contract.Event, {})
_decoder = msgspec.json.Decoder(LaxEvent)
decode = _decoder.decode  # bytes -> an event (``msgspec.DecodeError`` if it is not one)
