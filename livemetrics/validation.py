"""Turning request bodies into contract events, with an error naming the field for each bad one.

Pure functions: no I/O, used by the gateway and tested on their own.
"""

from __future__ import annotations

import re
import uuid
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import msgspec

from livemetrics.contract import MAX_BATCH, MAX_EVENT_BYTES, ContractError, EventIn, check_rules

# 13-19 digits, optionally grouped by single spaces or dashes, not part of a longer digit run.
_CARDISH = re.compile(r"(?<![\d])(?:\d[ \-]?){12,18}\d(?![\d])")
_CVC_KEY = re.compile(r"^(cvv2?|cvc2?|csc|cid|cav2|security[_\- ]?code|card[_\- ]?(security|verification)[_\- ]?(code|value)?|card[_\- ]?code)$", re.I)
# The top-level identifier and epoch-ms timestamp are digits by contract, never card data (a 13-digit
# epoch-ms value passes Luhn one time in ten): skipped, but only at the top level and only in the form
# the contract accepts (see ``_skipped``), so that the same digits anywhere else are still card data.
_EPOCH_MS_MIN, _EPOCH_MS_MAX = 946_684_800_000, 32_503_680_000_000  # the range ``contract.epoch_ms`` accepts


class BodyError(ValueError):
    """The whole body is unusable (malformed JSON, wrong shape, too many events)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class CardDataError(ContractError):
    """Card data found; the event must never be stored or forwarded as it is."""


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


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_in(text: str) -> bool:
    for m in _CARDISH.finditer(text):
        digits = re.sub(r"[ \-]", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return True
    return False


def _skipped(key: str, value: Any) -> bool:
    """A top-level ``ts`` in epoch ms or ``event_id`` as a UUID: never card data."""
    if key == "ts":
        return value.__class__ is int and _EPOCH_MS_MIN <= value <= _EPOCH_MS_MAX
    if key == "event_id" and isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True
    return False


def find_card_data(obj: Any, path: str = "$") -> str | None:
    """The path of the first value that looks like card data (or a CVC field), else None."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}"
            if isinstance(k, str) and _CVC_KEY.match(k):
                return p
            if path == "$" and _skipped(k, v):
                continue
            hit = find_card_data(v, p)
            if hit:
                return hit
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            hit = find_card_data(v, f"{path}[{i}]")
            if hit:
                return hit
    elif isinstance(obj, str):
        if len(obj) >= 13 and _card_in(obj):
            return path
    elif isinstance(obj, int) and not isinstance(obj, bool):
        if obj >= 10**12 and _card_in(str(obj)):
            return path
    return None


def redact(obj: Any, top: bool = True) -> Any:
    """A copy with every card-like value and CVC field replaced, safe for the dead-letter topic."""
    if isinstance(obj, dict):
        return {k: ("[redacted]" if isinstance(k, str) and _CVC_KEY.match(k)
                    else v if top and _skipped(k, v) else redact(v, False)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, False) for v in obj]
    if isinstance(obj, str) and len(obj) >= 13 and _card_in(obj):
        return "[redacted card number]"
    if isinstance(obj, int) and not isinstance(obj, bool) and obj >= 10**12 and _card_in(str(obj)):
        return "[redacted card number]"
    return obj


# Fast pre-checks on the raw bytes: most events have no digit run that could be a card number and
# no key that could be a security code, and then skip the (Python) walk over the decoded object.
# The epoch-ms `ts` (13 digits) is skipped here as in the walk, in the spacing JSON encoders use.
# Bytes cannot tell the top-level `ts` from a nested one (`payment.details` is free-form), so an event
# with `"ts"` twice goes to the walk, which skips only the top-level one. Once is enough for an accepted
# event: its top-level `ts` is there, spelt `"ts"` (an escaped key has a `\u` and is checked anyway).
# (NUL bytes split the search as the gaps of a joined batch do; JSON never holds a raw NUL.)
_CARD_RUN = re.compile(rb'(?<![\d])(?<!"ts":)(?<!"ts": )(?:\d[ \-]?){12,18}\d(?![\d])')
_TWO_TS = re.compile(rb'"ts"[^\x00]*"ts"')
_CVC_BYTES = re.compile(
    rb'"(?i:cvv2?|cvc2?|csc|cid|cav2|security[_\- ]?code|card[_\- ]?(?:security|verification)[_\- ]?(?:code|value)?|card[_\- ]?code)"'
)
_typed = msgspec.json.Decoder(EventIn)
_ENUM_NAMES = {"`$.type`": "event type", "`$.page.type`": "page type"}


# The same three checks as one RE2 automaton, which scans a whole body in one linear pass: the Python
# `re` scan above costs about 10 us per event (it tries every byte position), RE2 well under one. RE2
# has no look-behind, so the "not the epoch-ms `ts`" rule is spelt out as the characters that may come
# before the first digit of a candidate: anything but a digit, a colon not after `"ts"`, or a space not
# after `"ts":`. It flags a superset of what `_CARD_RUN` can match (any 13 digits in a row, single
# spaces or dashes allowed between them); whatever it flags is decided exactly by the `re` scan.
_NOT_TS_BEFORE = (
    rb'(?:^|[^0-9: ]'
    rb'|(?:^.{0,3}|[^"]...|.[^t]..|..[^s].|...[^"]):'
    rb'|(?:^.{0,4}|[^"]....|.[^t]...|..[^s]..|...[^"].|....[^:]) )'
)
_CVC_ALTS = rb'cvv2?|cvc2?|csc|cid|cav2|security[_\- ]?code|card[_\- ]?(?:security|verification)[_\- ]?(?:code|value)?|card[_\- ]?code'


def _re2_any(two_ts: bool = True):
    import re2  # google-re2: a linear-time automaton, no per-position backtracking

    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1  # bytes as bytes, whatever their UTF-8 validity
    opts.dot_nl = True
    opts.case_sensitive = True
    pattern = (rb'\\u|"(?i:' + _CVC_ALTS + rb')"|' + (rb'"ts"[^\x00]*"ts"|' if two_ts else b'')
               + _NOT_TS_BEFORE + rb'[0-9](?:[ \-]?[0-9]){12}')
    return re2.compile(pattern, opts)


_SUSPECT = _re2_any()
# The same without "`"ts"` twice": for a whole body, where that rule is a count instead (``clean_batch``).
_SUSPECT_IN_BODY = _re2_any(two_ts=False)

# The top-level `event_id` is a UUID by contract, never card data (``find_card_data`` skips it), but a
# random UUID holds a run of 13 or more decimal digits (dashes between) in about 2 events of 100. A
# digit run inside the canonical UUID value of the one `"event_id"` key of an event is skipped like the
# epoch-ms `ts`, and on the same grounds: an accepted event has its top-level `event_id` spelt
# `"event_id"` (an escaped key has a `\u`, which is always checked), so when the key occurs once that
# is the top-level one. Anywhere else (nested, or a second `"event_id"`), the same digits are scanned.
_EVENT_ID_KEY = b'"event_id"'
_QUOTED_UUID = re.compile(rb'"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"')


def _past_event_id(text: bytes, at: int, end: int, lo: int) -> int | None:
    """Where to search on when the match ``text[at:end]`` lies inside the quoted UUID value of the last
    `"event_id"` key in ``text[lo:at]``, else None. The caller has made sure that this key is the
    event's only one. Searching on 5 bytes before the closing quote finds every match that ends after
    the value (the context before a digit run starts at most 4 bytes before the quote) and none inside
    it (no 13 digits fit in 5 bytes)."""
    key = text.rfind(_EVENT_ID_KEY, lo, at)
    if key < 0:
        return None
    p = key + len(_EVENT_ID_KEY)
    if text[p:p + 1] == b" ":
        p += 1
    if text[p:p + 1] != b":":
        return None
    p += 1
    if text[p:p + 1] == b" ":
        p += 1
    if not (p <= at and end <= p + 37) or _QUOTED_UUID.match(text, p) is None:
        return None
    return p + 37 - 5


_GAP = b"\x00" * 6  # longer than any look-behind context: no match can reach from one event into the next


def events_to_card_check(raws: list[bytes]) -> list[int]:
    """Indices of the events that ``might_hold_card_data`` must look at; every other one certainly has
    no card number, CVC field or escape.

    One RE2 pass over the events joined by NUL gaps (a batch with no candidate costs only that), then one
    search per flagged event, each starting at the gap before the next event. A match never crosses a
    gap (digit runs, CVC keys, escapes and the two-`ts` span hold no NUL; the context before a run is at
    most 6 bytes), and the gap stands in for "start of text", so an event is flagged exactly when a
    search of it alone finds something, other than digits of its own `event_id` (see ``_past_event_id``)."""
    joined = _GAP.join(raws)
    m = _SUSPECT.search(joined)
    if m is None:
        return []
    starts = []  # where each event begins in ``joined``
    pos = 0
    for raw in raws:
        starts.append(pos)
        pos += len(raw) + len(_GAP)
    flagged = []
    n = len(raws)
    while m is not None:
        k = bisect_right(starts, m.end() - 1) - 1  # the event holding the match's last byte
        on = _past_event_id(joined, m.start(), m.end(), starts[k]) if raws[k].count(_EVENT_ID_KEY) == 1 else None
        if on is not None:  # digits of the event's own UUID: search on after it
            m = _SUSPECT.search(joined, on)
            continue
        flagged.append(k)
        if k + 1 >= n:
            break
        m = _SUSPECT.search(joined, starts[k + 1] - len(_GAP))
    return flagged


def might_hold_card_data(raw: bytes) -> bool:
    """False only when ``raw`` certainly has no card number or CVC field (escapes go the slow way)."""
    if _SUSPECT.search(raw) is None:
        return False
    if b"\\u" in raw or _CVC_BYTES.search(raw) or _TWO_TS.search(raw):
        return True
    for m in _CARD_RUN.finditer(raw):
        digits = m.group().replace(b" ", b"").replace(b"-", b"").decode()
        if luhn_ok(digits):
            return True
    return False


_typed_all = msgspec.json.Decoder(list[EventIn])


class _TypedEnvelope(msgspec.Struct):
    events: list[EventIn] | None = None


_typed_envelope = msgspec.json.Decoder(_TypedEnvelope)


def clean_batch(body: bytes) -> list[EventIn] | None:
    """Every event of a ``{"events": [...]}`` body, decoded in one call straight from the body, when all
    of it is clean: it decodes, every rule holds and nothing in it calls for the card check. None sends
    the body the exact way (``split_body``, ``events_to_card_check``, ``parse_all``/``parse_event``),
    which names every error; what this accepts, that way accepts too, with the same events.

    Saves splitting the body into per-event bytes, copying them and joining them again. The one RE2 pass
    runs over the body itself: the per-event rules it cannot see there are counts. An event that decodes
    has its top-level `ts` and `event_id` spelt `"ts"`/`"event_id"` (unless escaped, and a `\\u` is
    always a match), so with as many of each in the body as there are events, every event has exactly
    one (the two-`ts` rule of the per-event scan, and the one `event_id` that ``_past_event_id``
    needs). A match across two events is possible here, never a miss: the bytes before an event (`[`,
    `,`, `{`) never spell the `"ts":` a digit run must follow to be skipped."""
    if len(body) > MAX_EVENT_BYTES:  # under it, no event can be over the per-event limit
        return None
    try:
        events = _typed_envelope.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if not events or len(events) > MAX_BATCH:
        return None
    n = len(events)
    if body.count(b'"ts"') != n:
        return None
    m = _SUSPECT_IN_BODY.search(body)
    if m is not None and body.count(_EVENT_ID_KEY) != n:  # counted only when a match could be skipped
        return None
    while m is not None:
        on = _past_event_id(body, m.start(), m.end(), 0)
        if on is None:
            return None
        m = _SUSPECT_IN_BODY.search(body, on)
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
