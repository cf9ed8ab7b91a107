"""Card data: the exact check (13-19 digits passing Luhn, spaces or dashes allowed, and security-code
fields), the redacted copy for the dead-letter topic, and the fast byte scans that let almost every event
skip the exact check.

Pure functions, used by ``livemetrics.validation`` and the gateway.
"""

from __future__ import annotations

import re
import uuid
from bisect import bisect_right
from typing import Any

# 13-19 digits, optionally grouped by single spaces or dashes, not part of a longer digit run.
_CARDISH = re.compile(r"(?<![\d])(?:\d[ \-]?){12,18}\d(?![\d])")
_CVC_KEY = re.compile(r"^(cvv2?|cvc2?|csc|cid|cav2|security[_\- ]?code|card[_\- ]?(security|verification)[_\- ]?(code|value)?|card[_\- ]?code)$", re.I)
# The top-level identifier and epoch-ms timestamp are digits by contract, never card data (a 13-digit
# epoch-ms value passes Luhn one time in ten): skipped, but only at the top level and only in the form
# the contract accepts (see ``_skipped``), so that the same digits anywhere else are still card data.
_EPOCH_MS_MIN, _EPOCH_MS_MAX = 946_684_800_000, 32_503_680_000_000  # the range ``contract.epoch_ms`` accepts


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


def _re2_any(two_ts: bool = True, extra: bytes = b""):
    import re2  # google-re2: a linear-time automaton, no per-position backtracking

    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1  # bytes as bytes, whatever their UTF-8 validity
    opts.dot_nl = True
    opts.case_sensitive = True
    pattern = (rb'\\u|"(?i:' + _CVC_ALTS + rb')"|' + (rb'"ts"[^\x00]*"ts"|' if two_ts else b'')
               + (extra + b"|" if extra else b"") + _NOT_TS_BEFORE + rb'[0-9](?:[ \-]?[0-9]){12}')
    return re2.compile(pattern, opts)


_SUSPECT = _re2_any()


def body_scanner(extra: bytes):
    """The same without "`"ts"` twice", for a whole body, where that rule is a count (``clean_batch``), and
    with the caller's own alternatives ``extra`` in the same automaton: one pass finds either. A match of
    ``extra`` must never lie inside an `event_id` value (``past_event_id`` would skip it)."""
    return _re2_any(two_ts=False, extra=extra)


# The top-level `event_id` is a UUID by contract, never card data (``find_card_data`` skips it), but a
# random UUID holds a run of 13 or more decimal digits (dashes between) in about 2 events of 100. A
# digit run inside the canonical UUID value of the one `"event_id"` key of an event is skipped like the
# epoch-ms `ts`, and on the same grounds: an accepted event has its top-level `event_id` spelt
# `"event_id"` (an escaped key has a `\u`, which is always checked), so when the key occurs once that
# is the top-level one. Anywhere else (nested, or a second `"event_id"`), the same digits are scanned.
EVENT_ID_KEY = b'"event_id"'
_QUOTED_UUID = re.compile(rb'"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"')


def past_event_id(text: bytes, at: int, end: int, lo: int) -> int | None:
    """Where to search on when the match ``text[at:end]`` lies inside the quoted UUID value of the last
    `"event_id"` key in ``text[lo:at]``, else None. The caller has made sure that this key is the
    event's only one. Searching on 5 bytes before the closing quote finds every match that ends after
    the value (the context before a digit run starts at most 4 bytes before the quote) and none inside
    it (no 13 digits fit in 5 bytes)."""
    key = text.rfind(EVENT_ID_KEY, lo, at)
    if key < 0:
        return None
    p = key + len(EVENT_ID_KEY)
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
    search of it alone finds something, other than digits of its own `event_id` (see ``past_event_id``)."""
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
        on = past_event_id(joined, m.start(), m.end(), starts[k]) if raws[k].count(EVENT_ID_KEY) == 1 else None
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
