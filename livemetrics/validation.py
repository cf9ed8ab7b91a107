"""Turning request bodies into contract events, with an error naming the field for each bad one.

Pure functions: no I/O, used by the gateway and tested on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from livemetrics.card_data import EVENT_ID_KEY, body_scanner, find_card_data, might_hold_card_data, past_event_id, redact
from livemetrics.contract import MAX_BATCH, MAX_EVENT_BYTES, ContractError, EventIn, check_rules

class BodyError(ValueError):
    """The whole body is unusable (malformed JSON, wrong shape, too many events)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status



@dataclass(slots=True)
class Rejection:
    index: int
    error: str
    reason: str  # short machine word: schema, card_data, oversize, pii, seller
    raw: Any = None  # decoded event (card data already redacted) for the dead-letter topic


class _Envelope(msgspec.Struct):
    events: list[msgspec.Raw] | None = None


_envelope = msgspec.json.Decoder(_Envelope)
_generic = msgspec.json.Decoder()


def split_body(body: bytes) -> list[bytes]:
    """One event or ``{"events": [...]}`` -> the raw bytes of each event."""
    if not body.strip():
        raise BodyError("empty body: send one event object or {\"events\": [...]}")
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        raise BodyError("a JSON array is not accepted: wrap the events as {\"events\": [...]}")
    if stripped[:1] != b"{":
        raise BodyError("malformed JSON: the body must be a JSON object")
    try:
        env = _envelope.decode(body)
    except msgspec.DecodeError as exc:
        raise BodyError(f"malformed JSON: {exc}") from None
    if env.events is None:
        return [body]
    if len(env.events) > MAX_BATCH:
        raise BodyError(f"batch of {len(env.events)} events is over the limit of {MAX_BATCH}", status=413)
    if not env.events:
        raise BodyError("`events` is empty")
    return [bytes(r) for r in env.events]


_typed = msgspec.json.Decoder(EventIn)
_ENUM_NAMES = {"`$.type`": "event type", "`$.page.type`": "page type"}

_typed_all = msgspec.json.Decoder(list[EventIn])


# --- the clean path's own types: EventIn without the per-field regex checks -----------------------
# msgspec checks a `pattern=` by calling the compiled pattern's `search` from C on every value (~8 % of
# the gateway's main thread), and builds a `uuid.UUID` for every `event_id` that is only encoded back to
# its string (~5 %). The clean path decodes into twins of ``EventIn``'s types derived below: the same
# fields, order, defaults and other constraints, minus each pattern that ``_BAD_VALUE`` knows, and
# `event_id` as a string. Those checks are made on the body instead, in the very RE2 pass that looks
# for card data (``_CLEAN_SCAN``): it matches any such key followed by a value the pattern would refuse
# (or a non-canonical UUID), and any match sends the body the exact way, where the real types decide
# and name the error. Only values of plain ASCII with no escape pass (a `\u` is always a match), so a
# value the body check lets through decodes to the very string it checked. A key the check cannot tell
# from a nested one (`payment.details` is free-form) is checked wherever it occurs: never a miss, at
# worst a body sent the exact way.
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
_NOT_EMAIL_AT, _NOT_EMAIL_QUOTE = rb'["\\\x00-\x20\x7f-\xff]', rb'[@\\\x00-\x20\x7f-\xff]'
# Each pattern of the contract that the body check stands in for -> what, after the opening quote of a
# string value, shows that the value does not match it. A pattern not listed here stays in the twins.
_BAD_VALUE = {
    r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$": _bad_word(rb"A-Za-z0-9", rb"A-Za-z0-9_.:\-"),
    r"^[a-z][a-z0-9_]*$": _bad_word(rb"a-z", rb"a-z0-9_"),
    r"^[A-Z]{3}$": rb'(?:[^A-Z]|[A-Z][^A-Z]|[A-Z]{2}[^A-Z]|[A-Z]{3}[^"])',
    r"^[^@\s]+@[^@\s]+$": rb"(?:%s|%s+%s|%s+@%s|%s+@%s+%s)" % (
        _NOT_EMAIL, _EMAIL, _NOT_EMAIL_AT, _EMAIL, _NOT_EMAIL, _EMAIL, _EMAIL, _NOT_EMAIL_QUOTE),
    # the field's max_length (40) is checked by msgspec; the count here does not rely on it
    r"^\+?[0-9 ()\-.]{4,40}$": rb'(?:\+(?:%s)|[^+0-9 ()\-.]|%s{1,3}%s|%s{4,40}[^0-9 ()\-."]|%s{41})' % (
        _PHONE_TAIL, _PHONE, _NOT_PHONE, _PHONE, _PHONE),
}


_META_ATTRS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "tz", "title", "description",
               "examples", "extra_json_schema", "extra")  # every attribute of a Meta but `pattern`
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
        return Union[tuple(_loose(a, key) for a in args)]
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
    _TWINS[cls] = msgspec.defstruct(f"Clean{cls.__name__}", fields, forbid_unknown_fields=cfg.forbid_unknown_fields,
                                    omit_defaults=cfg.omit_defaults)
    return _TWINS[cls]


CleanEventIn = _twin(EventIn)


class _CleanEnvelope(msgspec.Struct):
    events: list[CleanEventIn] | None = None  # type: ignore[valid-type]


_clean_envelope = msgspec.json.Decoder(_CleanEnvelope)


def _bad_values() -> bytes:
    """`"key": value` for every key whose value the body check stands in for, the value not passing."""
    alts = [rb'"event_id"%s:%s(?:[^"n\t\n\r ]|"%s)' % (_WS, _WS, _bad_canonical_uuid())]
    for key, patterns in sorted(_KEYS.items()):
        bad = b"|".join(_BAD_VALUE[p] for p in sorted(patterns))  # a key with two patterns: either one
        alts.append(rb'"%s"%s:%s(?:[^"n\t\n\r ]|"(?:%s))' % (re.escape(key).encode(), _WS, _WS, bad))
    return b"|".join(alts)


_CLEAN_SCAN = body_scanner(_bad_values())


def clean_batch(body: bytes) -> list[CleanEventIn] | None:  # type: ignore[valid-type]
    """Every event of a ``{"events": [...]}`` body, decoded in one call straight from the body, when all
    of it is clean: it decodes, every rule holds and nothing in it calls for the card check. None sends
    the body the exact way (``split_body``, ``events_to_card_check``, ``parse_all``/``parse_event``),
    which names every error; what this accepts, that way accepts too, with the same values (here in the
    ``Clean`` twins of the contract's types, `event_id` as its canonical string: encoded alike).

    Saves splitting the body into per-event bytes, copying them and joining them again. The one RE2 pass
    runs over the body itself: the per-event rules it cannot see there are counts. An event that decodes
    has its top-level `ts` and `event_id` spelt `"ts"`/`"event_id"` (unless escaped, and a `\\u` is
    always a match), so with as many of each in the body as there are events, every event has exactly
    one (the two-`ts` rule of the per-event scan, and the one `event_id` that ``past_event_id``
    needs). A match across two events is possible here, never a miss: the bytes before an event (`[`,
    `,`, `{`) never spell the `"ts":` a digit run must follow to be skipped."""
    if len(body) > MAX_EVENT_BYTES:  # under it, no event can be over the per-event limit
        return None
    try:
        events = _clean_envelope.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if not events or len(events) > MAX_BATCH:
        return None
    n = len(events)
    if body.count(b'"ts"') != n:
        return None
    m = _CLEAN_SCAN.search(body)
    if m is not None and body.count(EVENT_ID_KEY) != n:  # counted only when a match could be skipped
        return None
    while m is not None:
        on = past_event_id(body, m.start(), m.end(), 0)
        if on is None:
            return None
        m = _CLEAN_SCAN.search(body, on)
    try:
        for ev in events:
            check_rules(ev)
    except ContractError:
        return None
    return events


def parse_all(raws: list[bytes]) -> list[EventIn] | None:
    """Every event of a batch, decoded in one call and checked, or None when any one of them fails.

    The caller has run the card check over ``raws`` and found nothing to look at. One decode of the
    whole batch costs less than one per event; on any failure the caller goes event by event
    (``parse_event``), so that each message names the event's own field and the good events still pass.
    The array is built from the very bytes the card check scanned, never re-read from the body."""
    for raw in raws:
        if len(raw) > MAX_EVENT_BYTES:
            return None
    try:
        events = _typed_all.decode(b"[" + b",".join(raws) + b"]")
        if len(events) != len(raws):
            return None
        for ev in events:
            check_rules(ev)
    except (msgspec.ValidationError, msgspec.DecodeError, ContractError):
        return None
    return events


def _friendly(msg: str) -> str:
    """msgspec's messages, with the wording the contract promises for unknown enum values."""
    if msg.startswith("Invalid enum value "):
        value, _, where = msg[len("Invalid enum value "):].partition(" - at ")
        name = _ENUM_NAMES.get(where)
        if name:
            return f"unknown {name} {value} - at {where}"
    if msg.startswith("Object missing required field") and " - at " not in msg:
        return msg + " - at `$`"
    return msg


def card_rejection(raw: bytes, index: int) -> Rejection | None:
    """The exact check of an event ``might_hold_card_data`` flagged: the walk over the decoded event."""
    try:
        obj = _generic.decode(raw)
    except msgspec.DecodeError as exc:
        return Rejection(index, f"malformed JSON: {exc}", "schema")
    card_path = find_card_data(obj)
    if card_path:
        return Rejection(
            index, f"card data is never accepted: value at `{card_path}` looks like a card number or security code",
            "card_data", redact(obj),
        )
    return None


def parse_event(raw: bytes, index: int, scan: bool = True) -> EventIn | Rejection:
    """Validate one event's bytes: size, card data, schema, cross-field rules.

    ``scan=False`` skips the card check: only for callers that scanned the whole body already."""
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(index, f"event is {len(raw)} bytes, over the limit of {MAX_EVENT_BYTES}", "oversize")
    if scan and might_hold_card_data(raw):
        rejected = card_rejection(raw, index)
        if rejected is not None:
            return rejected
    try:
        ev = _typed.decode(raw)
        check_rules(ev)
    except (msgspec.ValidationError, ContractError) as exc:
        msg = _friendly(str(exc))
        reason = "pii" if "personal data" in msg else "schema"
        return Rejection(index, msg, reason, _decoded_or_none(raw))
    except msgspec.DecodeError as exc:
        return Rejection(index, f"malformed JSON: {exc}", "schema")
    return ev


def _decoded_or_none(raw: bytes) -> Any:
    """The rejected event for the dead-letter topic. It passed the card check, but that check trusts the
    top-level `ts` only in a valid event, which this one is not: redacted again, whatever it holds."""
    try:
        return redact(_generic.decode(raw))
    except msgspec.DecodeError:
        return None
