"""Turning request bodies into contract events, with an error naming the field for each bad one.

Pure functions: no I/O, used by the gateway and tested on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from livemetrics.card_data import (
    EVENT_ID_KEY,
    find_card_data,
    might_hold_card_data,
    past_event_id,
    redact,
    redact_checked,
    scan_decoder,
)
from livemetrics.clean_types import CLEAN_SCAN, CleanEventIn, clean_envelope
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
    reason: str  # short machine word: schema, card_data, oversize, pii, seller, clock_skew
    raw: Any = None  # decoded event (card data already redacted) for the dead-letter topic


class _Envelope(msgspec.Struct):
    events: list[msgspec.Raw] | None = None


_envelope = msgspec.json.Decoder(_Envelope)


def split_body(body: bytes) -> list[bytes]:
    """One event or ``{"events": [...]}`` -> the raw bytes of each event."""
    if not body.strip():
        raise BodyError('empty body: send one event object or {"events": [...]}')
    stripped = body.lstrip()
    if stripped[:1] == b"[":
        raise BodyError('a JSON array is not accepted: wrap the events as {"events": [...]}')
    if stripped[:1] != b"{":
        raise BodyError("malformed JSON: the body must be a JSON object")
    try:
        env = _envelope.decode(body)
    except msgspec.DecodeError as exc:
        raws = _split_around_lone_surrogates(body)
        if raws is None:
            raise BodyError(f"malformed JSON: {exc}") from None
        return raws
    except RecursionError:  # msgspec's depth limit: a RecursionError, not a DecodeError, for every caller
        raise BodyError("malformed JSON: nested too deeply") from None
    if env.events is None:
        return [body]
    if len(env.events) > MAX_BATCH:
        raise BodyError(f"batch of {len(env.events)} events is over the limit of {MAX_BATCH}", status=413)
    if not env.events:
        raise BodyError("`events` is empty")
    return [bytes(r) for r in env.events]


# A \u escape of a UTF-16 surrogate that is not half of a pair (an odd run of backslashes before the `u`):
# no Unicode character, so no JSON decoder here takes it. A browser's JSON.stringify writes one for a string
# cut inside a surrogate pair (a title sliced to 200 UTF-16 units in the middle of an emoji), and Python's
# json.dumps for a string holding one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # a literal first: a fast scan


def _lone_surrogates(data: bytes) -> list[int]:
    """Where each lone surrogate escape of ``data`` starts (its backslash): a real escape (an even run of
    backslashes before it) of a high half not followed at once by a low one, or of a low half not right
    after a high one."""
    found: list[int] = []
    high_end = -1  # where the last real high-half escape ended, while it waits for its low half
    for m in _SURROGATE_ESCAPE.finditer(data):
        s = m.start()
        k = s
        while k and data[k - 1] == 0x5C:  # backslashes before it
            k -= 1
        if (s - k) % 2:
            continue  # "\\ud800": an escaped backslash, then text
        is_high = data[s + 3] in b"89abAB"
        if high_end >= 0 and (is_high or high_end != s):
            found.append(high_end - 6)  # the high half before has no low half right after it
        if is_high:
            high_end = m.end()
        else:
            if high_end != s:
                found.append(s)
            high_end = -1
    if high_end >= 0:
        found.append(high_end - 6)
    return found


def _without_lone_surrogates(data: bytes, at: list[int]) -> bytes:
    """``data`` with the escapes starting at ``at`` written ``\\ufffd`` (as long: offsets stay)."""
    out: list[bytes] = []
    last = 0
    for s in at:
        out += (data[last:s], b"\\ufffd")
        last = s + 6
    out.append(data[last:])
    return b"".join(out)


# Surrogate escapes (halves of pairs too) a body may hold for its lone ones to be refused event by event
# (a tracker's batch holds a few); past it the body is refused whole, as any malformed body. Each one found
# costs Python code; with the bound a malformed MiB costs 8-35 ms here (count, scan, a second decode).
_MOST_SURROGATE_ESCAPES = 4 * MAX_BATCH


def _malformed(raw: bytes, exc: msgspec.DecodeError) -> str:
    """The error for an event that does not decode, naming the string that holds a lone surrogate escape
    when that is why (the value is not repeated: it could be anything)."""
    at = _lone_surrogates(raw)
    if not at:
        return f"malformed JSON: {exc}"
    escape = raw[at[0] : at[0] + 6].decode()
    try:
        where = _replaced_at(msgspec.json.decode(_without_lone_surrogates(raw, at)), "$")
    except (msgspec.DecodeError, RecursionError):
        return f"malformed JSON: {exc}"
    return (
        f"malformed JSON: a string holds a lone UTF-16 surrogate escape ({escape}), which is no Unicode "
        f"character (a string cut inside a surrogate pair, such as an emoji); send well-formed text - at `{where}`"
    )


def _replaced_at(obj: Any, path: str) -> str:
    """The path of the first string (or key) holding U+FFFD in a decoded event, else ``path``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if "\ufffd" in k:
                return f"{path} (a key)"
            found = _replaced_at(v, f"{path}.{k}")
            if found != f"{path}.{k}" or (isinstance(v, str) and "\ufffd" in v):
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = _replaced_at(v, f"{path}[{i}]")
            if found != f"{path}[{i}]" or (isinstance(v, str) and "\ufffd" in v):
                return found
    return path


def _split_around_lone_surrogates(body: bytes) -> list[bytes] | None:
    """The events of a ``{"events": [...]}`` body that does not decode only because some of them hold a lone
    surrogate escape: each event's own bytes (those events then fail alone, ``parse_event``), else None.
    Before, one such event made the whole body a 400 and every other event of the batch was lost (the
    trackers do not send a 4xx again)."""
    if body.count(b"\\ud") + body.count(b"\\uD") > _MOST_SURROGATE_ESCAPES:
        return None
    at = _lone_surrogates(body)
    if not at:
        return None
    fixed = _without_lone_surrogates(body, at)  # as long as the body: offsets stay
    try:
        env = _envelope.decode(fixed)
    except (msgspec.DecodeError, RecursionError):  # the usual answer for a malformed body, from split_body
        return None
    if env.events is None:
        return [body]
    if not env.events or len(env.events) > MAX_BATCH:
        return None  # the usual answers, from the usual path
    raws: list[bytes] = []
    pos = 0
    for r in env.events:
        part = bytes(r)
        pos = fixed.find(part, pos)  # each event's bytes are a slice of ``fixed``, in order
        raws.append(body[pos : pos + len(part)])
        pos += len(part)
    return raws


_typed = msgspec.json.Decoder(EventIn)
_ENUM_NAMES = {"`$.type`": "event type", "`$.page.type`": "page type"}

_typed_all = msgspec.json.Decoder(list[EventIn])


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
        events = clean_envelope.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):  # the exact way names the error
        return None
    if not events or len(events) > MAX_BATCH:
        return None
    n = len(events)
    if body.count(b'"ts"') != n:
        return None
    m = CLEAN_SCAN.search(body)
    if m is not None and body.count(EVENT_ID_KEY) != n:  # counted only when a match could be skipped
        return None
    while m is not None:
        on = past_event_id(body, m.start(), m.end(), 0)
        if on is None:
            return None
        m = CLEAN_SCAN.search(body, on)
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
        value, _, where = msg[len("Invalid enum value ") :].partition(" - at ")
        name = _ENUM_NAMES.get(where)
        if name:
            return f"unknown {name} {value} - at {where}"
    if " - at " not in msg:  # msgspec names no path for the event object itself ("Expected `object`...")
        return msg + " - at `$`"
    return msg


def card_rejection(raw: bytes, index: int) -> Rejection | None:
    """The exact check of an event ``might_hold_card_data`` flagged: the walk over the decoded event."""
    try:
        obj = scan_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        return Rejection(index, _malformed(raw, exc), "schema")
    where = find_card_data(obj)
    if where:
        return Rejection(
            index,
            f"card data is never accepted: {where} looks like a card number or security code",
            "card_data",
            redact(obj),
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
        return Rejection(index, _malformed(raw, exc), "schema")
    return ev


def _decoded_or_none(raw: bytes) -> Any:
    """The rejected event for the dead-letter topic. It passed the card check, but that check trusts the
    top-level `ts` only in a valid event, which this one is not: what the check trusts is redacted again
    (``redact_checked``), whatever it holds."""
    try:
        return redact_checked(scan_decoder.decode(raw))
    except msgspec.DecodeError:
        return None
