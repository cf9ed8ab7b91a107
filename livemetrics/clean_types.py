r"""The gateway's clean path (``validation.clean_batch``): twins of the contract's input types without
msgspec's per-field regex checks, and the body check that stands in for those checks.

msgspec checks a `pattern=` by calling the compiled pattern's `search` from C on every value, and builds a `uuid.UUID` for every `event_id` that is only encoded back to
its string (costs in BENCHMARKS.md, Profiling notes). The clean path decodes into twins of ``EventIn``'s types derived below: the same
fields, order, defaults and other constraints, minus each pattern that ``_BAD_VALUE`` knows, and
`event_id` as a string. Those checks are made on the body instead, in the very RE2 pass that looks
for card data (``CLEAN_SCAN``): it matches any such key followed by a value the pattern would refuse
(or a non-canonical UUID), and any match sends the body the exact way, where the real types decide
and name the error. Only values of plain ASCII with no escape pass (a `\u` is always a match), so a
value the body check lets through decodes to the very string it checked. A key the check cannot tell
from a nested one (`payment.details` is free-form) is checked wherever it occurs: never a miss, at
worst a body sent the exact way.
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from livemetrics.card_data import body_scanner
from livemetrics.contract import CURRENCY_PATTERN, EMAIL_PATTERN, METHOD_PATTERN, PHONE_PATTERN, SLUG_PATTERN, EventIn

_WS = rb"[\t\n\r ]*"
_HEX, _NOT_HEX = rb"[0-9a-f]", rb"[^0-9a-f]"
_UUID_GROUPS = (8, 4, 4, 4, 12)


def _bad_canonical_uuid() -> bytes:
    """After the opening quote: anything but a lowercase 8-4-4-4-12 UUID and its closing quote."""
    alts, done = [], b""
    for i, n in enumerate(_UUID_GROUPS):
        alts.append(done + _HEX + b"{0,%d}" % (n - 1) + _NOT_HEX)
        done += _HEX + b"{%d}" % n
        alts.append(done + (b'[^"]' if i == len(_UUID_GROUPS) - 1 else b"[^-]"))
        done += b"-" if i < len(_UUID_GROUPS) - 1 else b""
    return b"(?:" + b"|".join(alts) + b")"


def _bad_word(first: bytes, rest: bytes) -> bytes:
    """After the opening quote: anything but ``[first][rest]*`` and the closing quote."""
    return b'(?:[^%s]|[%s][%s]*[^%s"])' % (first, first, rest, rest)


_PHONE = rb"[0-9 ()\-.]"
_NOT_PHONE = rb"[^0-9 ()\-.]"
_PHONE_TAIL = rb'%s{0,3}%s|%s{4,40}[^0-9 ()\-."]|%s{41}' % (_PHONE, _NOT_PHONE, _PHONE, _PHONE)
# ASCII only, no escape: never a character that Python's `\s` (or `@`) matches in the decoded string.
_EMAIL, _NOT_EMAIL = rb'[^@"\\\x00-\x20\x7f-\xff]', rb'[@"\\\x00-\x20\x7f-\xff]'
_NOT_EMAIL_AT, _NOT_EMAIL_QUOTE = rb'["\\\x00-\x20\x7f-\xff]', rb"[@\\\x00-\x20\x7f-\xff]"
# Each pattern of the contract that the body check stands in for -> what, after the opening quote of a
# string value, shows that the value does not match it. A pattern not listed here stays in the twins.
_BAD_VALUE = {
    SLUG_PATTERN: _bad_word(rb"A-Za-z0-9", rb"A-Za-z0-9_.:\-"),
    METHOD_PATTERN: _bad_word(rb"a-z", rb"a-z0-9_"),
    CURRENCY_PATTERN: rb'(?:[^A-Z]|[A-Z][^A-Z]|[A-Z]{2}[^A-Z]|[A-Z]{3}[^"])',
    EMAIL_PATTERN: rb"(?:%s|%s+%s|%s+@%s|%s+@%s+%s)"
    % (_NOT_EMAIL, _EMAIL, _NOT_EMAIL_AT, _EMAIL, _NOT_EMAIL, _EMAIL, _EMAIL, _NOT_EMAIL_QUOTE),
    # the field's max_length (40) is checked by msgspec; the count here does not rely on it
    PHONE_PATTERN: rb'(?:\+(?:%s)|[^+0-9 ()\-.]|%s{1,3}%s|%s{4,40}[^0-9 ()\-."]|%s{41})'
    % (_PHONE_TAIL, _PHONE, _NOT_PHONE, _PHONE, _PHONE),
}


_META_ATTRS = (
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "min_length",
    "max_length",
    "tz",
    "title",
    "description",
    "examples",
    "extra_json_schema",
    "extra",
)  # every attribute of a Meta but `pattern`
_KEYS: dict[str, set[str]] = {}  # JSON key -> the patterns dropped from its fields


def _loose(tp: Any, key: str) -> Any:
    """``tp`` with the patterns of ``_BAD_VALUE`` dropped (recorded under ``key``), structs as twins."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        metas = []
        for m in tp.__metadata__:
            if isinstance(m, msgspec.Meta) and m.pattern in _BAD_VALUE:
                _KEYS.setdefault(key, set()).add(m.pattern)
                m = msgspec.Meta(**{a: getattr(m, a) for a in _META_ATTRS if getattr(m, a) is not None})
            metas.append(m)
        return Annotated[(_loose(args[0], key), *metas)]
    if origin in (Union, UnionType):
        return Union[tuple(_loose(a, key) for a in args)]  # noqa: UP007 - built from a tuple of types
    if origin is list:
        return list[_loose(args[0], key)]
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _twin(tp)
    return tp


_TWINS: dict[type, type] = {}


def _twin(cls: type) -> type:
    if cls in _TWINS:
        return _TWINS[cls]
    cfg = cls.__struct_config__
    if cls.__struct_encode_fields__ != cls.__struct_fields__ or cfg.tag or cfg.array_like:  # keys are field names
        raise RuntimeError(f"{cls.__name__}: the clean path's body check needs plain field names")
    fields = []
    for f in msgspec.structs.fields(cls):
        tp = str if cls is EventIn and f.name == "event_id" else _loose(f.type, f.name)
        fields.append((f.name, tp) if f.required else (f.name, tp, f.default))
    _TWINS[cls] = msgspec.defstruct(
        f"Clean{cls.__name__}", fields, forbid_unknown_fields=cfg.forbid_unknown_fields, omit_defaults=cfg.omit_defaults
    )
    return _TWINS[cls]


CleanEventIn = _twin(EventIn)


class _CleanEnvelope(msgspec.Struct):
    events: list[CleanEventIn] | None = None  # type: ignore[valid-type]


clean_envelope = msgspec.json.Decoder(_CleanEnvelope)


def _bad_values() -> bytes:
    """`"key": value` for every key whose value the body check stands in for, the value not passing."""
    alts = [rb'"event_id"%s:%s(?:[^"n\t\n\r ]|"%s)' % (_WS, _WS, _bad_canonical_uuid())]
    for key, patterns in sorted(_KEYS.items()):
        bad = b"|".join(_BAD_VALUE[p] for p in sorted(patterns))  # a key with two patterns: either one
        alts.append(rb'"%s"%s:%s(?:[^"n\t\n\r ]|"(?:%s))' % (re.escape(key).encode(), _WS, _WS, bad))
    return b"|".join(alts)


CLEAN_SCAN = body_scanner(_bad_values())
