"""Card data on raw bytes: the fast scans that let almost every event skip the exact check of
``livemetrics.card_data`` (one RE2 pass over a batch, then the same rules as the walk on one event's text).

Pure functions, used by ``livemetrics.validation``, ``livemetrics.clean_types`` and the gateway.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator

from livemetrics.card_encodings import ENCODED_DIGITS
from livemetrics.card_numbers import (
    NUMBER_SPELLING,
    card_in_encoded,
    card_in_groups,
    card_in_number,
    card_in_text,
)
from livemetrics.card_spellings import PLAIN, PLAIN_SPELLINGS


def _re2_str(pattern: str):  # -> re2._Regexp
    import re2  # google-re2: a linear-time automaton; on a str, its positions are the str's

    return re2.compile(pattern)


# The same rules on the raw bytes of one event, for ``might_hold_card_data``: the string rule over the whole
# text (a string's quotes stand where its ends are), every number token (after `:`, `,` or `[`) and every
# quoted whole-number spelling. It finds whatever the walk finds in an event that decodes (a `\u` escape
# is always a match), except in the top-level epoch-ms `ts`: the run or number right after `"ts":` or
# `"ts": ` is skipped, and an event with `"ts"` twice goes to the walk. A top-level `ts` that is no
# epoch-ms int fails validation, and the rejected event's dead-letter copy is redacted by the walk.
# Only a number whose integer part has 13 or more digits, or that has an exponent, can have a card's value
# (``card_in_number``: at least 10**12; a float's rounding of a shorter one reaches at most 10**12, no card):
# the look-ahead skips every other token at C speed (an array of 10,000 short ints was 10,000 Decimals).
_NUMBER_TOKEN = re.compile(
    r"[:,\[][\t\n\r ]*(?=-?[0-9]{13}|-?[0-9]+(?:\.[0-9]+)?[eE])"
    r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+\-]?[0-9]+)?)(?![0-9A-Za-z_.+\-])"
)
_NUMBER_AT = _re2_str(r"[:,\[][\t\n\r ]*(?:-?[0-9]{13}|-?[0-9]+(?:\.[0-9]+)?[eE])")  # where the look-ahead holds
_QUOTED_NUMBER = re.compile(r'"(?=[+\-]?[0-9]{13}|[+\-]?[0-9.]*[eE])(%s)"' % NUMBER_SPELLING.pattern)
_TS_BEFORE = ('"ts":', '"ts": ')
# An array item that may be a card's digit group (``card_numbers.item_digits``: 1-6 ASCII digits, quoted or
# not), after its `[` or `,` and before the next `,` or `]`: adjacent matches are adjacent items, each run
# read as the walk reads it (``card_in_groups``). A longer number, a float or a negative one is no match
# and ends the run, as in the walk. A match inside a string (`"x,4111,1111"`) is no items: it is skipped
# (``outside_strings``; the text rules read its digits).
# In a text that is not all ASCII a quoted item's digits may be any Unicode decimal digits (`"４１１１"`,
# ``item_digits``; `\d` is Unicode's Nd in a str pattern): the same patterns with `\d` (``_runs``), and the
# digits read as ASCII's. An ASCII text keeps the `[0-9]` ones.
_ARRAY_ITEM = r'[\[,][\t\n\r ]*(?:"[0-9]{1,6}"|[0-9]{1,6})[\t\n\r ]*(?=[,\]])'
_ARRAY_RUN = re.compile(f"(?:{_ARRAY_ITEM})+")  # adjacent items: one match, found at C speed
_ITEM_DIGITS = re.compile(r'[\[,][\t\n\r ]*"?([0-9]{1,6})')  # each item's digits, inside a run
# An object's `"key": value` pair whose value may be a digit group, after its `{` or `,` and before the next
# `,` or `}`: an object's adjacent values are read as an array's items are (``card_data.find_card_data``,
# in the order the keys are written). The text has JSON's escapes decoded (``card_in_raw_text``: `\"` reads
# as `'`), so every `"` in it is a string's end and a key is `"[^"]*"`. A match starting inside a string
# (its "key" the gap between two strings) is no pairs and is skipped (``outside_strings``).
_OBJECT_PAIR = r'[{,][\t\n\r ]*"[^"]*"[\t\n\r ]*:[\t\n\r ]*(?:"[0-9]{1,6}"|[0-9]{1,6})[\t\n\r ]*(?=[,}])'
_OBJECT_RUN = re.compile(f"(?:{_OBJECT_PAIR})+")
_PAIR_DIGITS = re.compile(r'[{,][\t\n\r ]*"[^"]*"[\t\n\r ]*:[\t\n\r ]*"?([0-9]{1,6})')  # each value's digits


def _unicode(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace('"[0-9]{1,6}"', r'"\d{1,6}"').replace('"?([0-9]{1,6})', r'"?(\d{1,6})'))


_RUNS = {  # ASCII text -> (array run, item digits, object run, value digits)
    True: (_ARRAY_RUN, _ITEM_DIGITS, _OBJECT_RUN, _PAIR_DIGITS),
    False: tuple(_unicode(p.pattern) for p in (_ARRAY_RUN, _ITEM_DIGITS, _OBJECT_RUN, _PAIR_DIGITS)),
}


# JSON's two-character escapes, as the walk reads them decoded: `\n` is a letter before digits in the bytes,
# a new line (a separator, card_numbers.SEPARATOR) once decoded, and `4111\/1111\/...` is a slash-grouped
# number. A quote stays no quote (`\"ts\":` inside a string must not spell the `"ts":` whose run the check
# skips); an escaped backslash stays a backslash, and pairs are read left to right (`\\n` is no new line).
_ESCAPE = re.compile(r'\\(["\\/bfnrt])')
_DECODED = {'"': "'", "\\": "\\", "/": "/", "b": "\x08", "f": "\x0c", "n": "\n", "r": "\r", "t": "\t"}


def _decoded(m: re.Match[str]) -> str:
    return _DECODED[m.group(1)]


def event_text(raw: bytes) -> str:
    """An event's bytes as the text the rules read: UTF-8 (non-ASCII digits and spaces count in their
    plain spelling), any byte that is not UTF-8 kept apart as a character no rule reads."""
    return raw.decode("utf-8", "surrogateescape")


def card_in_raw_text(text: str) -> bool:
    if "\\" in text:
        text = _ESCAPE.sub(_decoded, text)
    read: set[str] = set()  # the runs the text rules read, for the items' and values' runs (``_card_in_runs``)
    if card_in_text(text, skip_ts=True, read=read) or card_in_encoded(text):
        return True
    for m in _number_tokens(text):
        token = m.group(1)
        if text.endswith(_TS_BEFORE, 0, m.start(1)):
            continue
        if card_in_number(token):
            return True
        if ("." in token or "e" in token or "E" in token) and card_in_number(repr(float(token))):
            return True  # what the float it is decoded to would be forwarded as
    return (
        any(card_in_number(m.group(1)) for m in _QUOTED_NUMBER.finditer(text))
        or _card_in_array_items(text, read)
        or _card_in_object_values(text, read)
    )


def _number_tokens(text: str) -> Iterator[re.Match[str]]:
    """``_NUMBER_TOKEN.finditer(text)``, tried only where its look-ahead holds (``_NUMBER_AT``, one RE2 pass): an
    array of 6,000 short ints was 6,000 tries of the look-ahead in Python, ~2.7 ms. A match of ``_NUMBER_AT``
    spans a `:`, `,` or `[` and then only white space, digits, `-`, `.`, `e`: no other token starts inside it,
    and a token ends before the next `:`, `,` or `[`, so the tokens are the same, in the same order."""
    try:
        starts = [at.start() for at in _NUMBER_AT.finditer(text)]
    except UnicodeEncodeError:  # bytes that are no UTF-8 (``event_text``; no event decodes): tried everywhere
        yield from _NUMBER_TOKEN.finditer(text)
        return
    for start in starts:
        m = _NUMBER_TOKEN.match(text, start)
        if m is not None:
            yield m


def _card_in_array_items(text: str, read: set[str] | None = None) -> bool:
    """Adjacent array items in ``text`` (``_ARRAY_ITEM``) hold a card number as the walk reads them."""
    ascii_ = text.isascii()
    return _card_in_runs(text, *_RUNS[ascii_][:2], ascii_, 15, read)  # 13 digits and two items' `[` or `,` at least


def _card_in_object_values(text: str, read: set[str] | None = None) -> bool:
    """Adjacent values of an object in ``text`` (``_OBJECT_PAIR``) hold a card number as the walk reads them."""
    if ":" not in text:
        return False
    ascii_ = text.isascii()
    if ascii_ and _OBJECT_GATE.search(text.encode()) is None:
        return False  # no pairs in a printed layout: a card over values has them (a hostile array's ~1 ms saved)
    # 13 digits and two pairs' `{` or `,`, `""` and `:` at least
    return _card_in_runs(text, *_RUNS[ascii_][2:], ascii_, 23, read)


def outside_strings(runs: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """The matches of ``runs`` in ``text`` (JSON with its escapes decoded, ``card_in_raw_text``: every `"` is a
    string's end) that start outside its strings, by the parity of the quotes before them. In valid JSON (an
    event the walk reads: one that does not decode is refused unread) a match of ``_ARRAY_RUN`` or
    ``_OBJECT_RUN`` that starts inside a string is none of the walk's items or values: it only adds a run to
    read (`"1111,1111,..."`: the text rules read it already), and an object's "pair" from a comma inside a
    string (`"x,", ":1,": 4111`: its key the gap between two strings) swallowed the real pair at the gap's comma.
    So the search goes on from that string's end instead, and a match that starts outside one is all real items
    or pairs (its quotes are whole keys or items)."""
    pos = counted = quotes = 0
    while (m := runs.search(text, pos)) is not None:
        start = m.start()
        quotes += text.count('"', counted, start)
        counted = start
        if quotes & 1:  # inside a string: on from its closing quote
            close = text.find('"', start)
            if close < 0:
                return
            quotes += 1
            counted = pos = close + 1
            continue
        yield m
        pos = m.end()


def _card_in_runs(
    text: str, runs: re.Pattern[str], digits: re.Pattern[str], ascii_: bool, shortest: int, read: set[str] | None
) -> bool:
    """Each match of ``runs`` (adjacent items or values, ``outside_strings``) of at least ``shortest`` characters,
    its groups read by ``digits`` (in their plain spelling when ``text`` is not all ASCII), holds a card number
    (``card_in_groups``). A run whose groups the text rules read already and found no card in, in a run whose
    windows take in the items' (``read``, ``card_numbers.reads_as_items``: `[1111, 1111, ...]` is the text
    `1111, 1111, ...` too), is not read again."""
    for m in outside_strings(runs, text):
        if m.end() - m.start() < shortest:
            continue
        groups = digits.findall(text, m.start(), m.end())
        if not ascii_:
            groups = [g.translate(PLAIN) for g in groups]
        if sum(map(len, groups)) >= 13 and (not read or ",".join(groups) not in read) and card_in_groups(groups):
            return True
    return False


# Fast pre-checks on the raw bytes: most events have nothing that could be a card number and no key that
# could be a security code, and then skip the (Python) checks. The epoch-ms `ts` is skipped here as in
# ``card_in_raw_text``, in the spacing JSON encoders use. Bytes cannot tell the top-level `ts` from a
# nested one (`payment.details` is free-form), so an event with `"ts"` twice goes to the walk, which skips
# only the top-level one. Once is enough for an accepted event: its top-level `ts` is there, spelt `"ts"`
# (an escaped key has a `\u` and is checked anyway).
# (NUL bytes split the search as the gaps of a joined batch do; JSON never holds a raw NUL.)
_TWO_TS = re.compile(rb'"ts"[^\x00]*"ts"')
_CVC_ALTS = rb"cvv2?|cvc2?|csc|cid|cav2|security[_\- ]?code|card[_\- ]?(?:security|verification)[_\- ]?(?:code|value)?|card[_\- ]?code"
_CVC_BYTES = re.compile(rb'"(?i:' + _CVC_ALTS + rb')"')

# One RE2 automaton (linear in the body; its cost per event: BENCHMARKS.md, Profiling notes) that matches a superset of what
# ``card_in_raw_text`` finds: RE2 has no look-around, so the boundaries are spelt as the characters around
# a candidate. Before its first digit (``_LEFT``): the start, or a character that is no ASCII word
# character, `+` or `.`, or a `.` not after a digit, or an escape (`\n`, `\t`...: a letter in the
# bytes), or a colon not after `"ts"`, or a space not after `"ts":` (its first `"` not escaped), or a
# `+` after a digit (pluses group digits). Then one group of 13 or more digits followed by no word
# character but `e`/`E` (a number's exponent); or 3 groups of 1-6 digits, 13 or more in all; or 4 or more such groups (any separator of
# card_numbers.SEPARATOR between, wide and mixed ones too, in any layout), then no word character. Number
# tokens with a non-negative exponent (after `:`, `,` or `[`), and quoted whole numbers with one, are
# matched whatever their digits (their value may have 13-19 integer digits); a quoted `+` and 13 digits
# too. A number whose integer part has 13 or more digits (negative exponent or
# none) is the one-group case. Float rounding of a number with fewer adds no card: at most it carries
# 999999999999.99... up to 10**12, a 1 and 12 zeros, no card number.


def _not_after(word: bytes) -> bytes:
    """Where a text that does not end with ``word`` ends, spelt by its last characters: the last one is not
    ``word``'s last (or there is none), or it is and the one before is not ``word``'s one before, and so on.
    (The same language as "the start, or a window of ``len(word)`` characters, one of them not ``word``'s",
    ``^.{0,3}|[^"]...|.[^t]..|..[^s].|...[^"]``, at a fraction of the automaton's cost: a window's branches
    keep a thread alive for ``len(word)`` characters at every position, and their combinations with the
    other alternatives' threads multiplied the states the clean events' pass goes through.)"""
    return b"(?:%s)" % b"|".join(
        b"(?:^|[^%s])%s" % (re.escape(word[-1 - i : len(word) - i]), re.escape(word[len(word) - i :]))
        for i in range(len(word))
    )


# A `"ts"` whose first quote is escaped (`{"m\"ts": 4111...}`, a key `m"ts`) is no `ts` key: the raw check
# reads it decoded (`'ts":`) and skips nothing after it, nor may this pass.
_LEFT = (
    rb"(?:^|[^0-9A-Za-z_+:. ]|(?:^|[^0-9])\.|\\[bfnrt]|(?:"
    + _not_after(b'"ts"')
    + rb'|\\"ts"):|(?:'
    + _not_after(b'"ts":')
    + rb'|\\"ts":) |[0-9]\+)'
)
_RIGHT = rb"(?:[^0-9A-Za-z_]|$)"
# card_numbers.SEPARATOR in the bytes: white space raw (between JSON tokens) or escaped (in a string), any
# number of it, with or without one of the punctuation marks (JSON's `\/` for a slash)
_WS = rb"(?:[ \t\n\r\x0b\x0c]|\\[fnrt])"
_SEP = rb"(?:" + _WS + rb"*(?:[\-+./,]|\\/)" + _WS + rb"*|" + _WS + rb"+)"
_GROUP = rb"[0-9]{1,6}"
_THREE_GROUPS = b"|".join(
    b"[0-9]{%d}%s[0-9]{%d}%s[0-9]{%d,6}" % (a, _SEP, b, _SEP, max(1, 13 - a - b))
    for a in range(1, 7)
    for b in range(1, 7)
    if 13 - a - b <= 6
)
_CANDIDATE = (
    _LEFT
    + rb"(?:[0-9]{13}[0-9]*(?:[^0-9A-DF-Za-df-z_]|$)|(?:"
    + _THREE_GROUPS
    + rb")"
    + _RIGHT
    + rb"|"
    + _GROUP
    + (_SEP + _GROUP) * 3
    + _RIGHT
    + rb")"
    + rb'|[:,\[][\t\n\r ]*-?[0-9.]*[0-9][eE]\+?[0-9]|"[+\-]?[0-9.]*[eE]\+?[0-9]+"|"\+[0-9]{13}'
)


def _item(sizes: bytes) -> bytes:
    return rb'(?:"[0-9]{%s}"|[0-9]{%s})' % (sizes, sizes)


# Adjacent array items in a printed card layout (4-4-4-1..4, 4-6-4..5), quoted or not, each after its `[`
# or `,` and before a `,` or `]` (``_ARRAY_ITEM``): `["4111","1111","1111","1111"]` has no digit run for
# ``_CANDIDATE`` (its quotes stand between the groups). Arrays of short numbers, years or amounts are not
# matched unless four items in a row have 4 digits each, or 4, 6 and 4-5 (docs/ingest.md: the hit rates).
_ITEM_SEP = rb"[\t\n\r ]*,[\t\n\r ]*"
_ARRAY_ITEMS = (
    rb"[\[,][\t\n\r ]*(?:"
    + _ITEM_SEP.join((_item(b"4"), _item(b"4"), _item(b"4"), _item(b"1,4")))
    + b"|"
    + _ITEM_SEP.join((_item(b"4"), _item(b"6"), _item(b"4,5")))
    + rb")[\t\n\r ]*[,\]]"
)


# The same for an object's adjacent values (``_OBJECT_PAIR``): each after its `{` or `,` and its key, a JSON
# string in the bytes (escapes undecoded: `"a\"b"`), quoted or not: `{"cc1":"4111","cc2":"1111",...}`.
_KEY = rb'"(?:[^"\\]|\\.)*"[\t\n\r ]*:[\t\n\r ]*'
_PAIR_SEP = _ITEM_SEP + _KEY
_OBJECT_VALUES = (
    rb"[{,][\t\n\r ]*"
    + _KEY
    + rb"(?:"
    + _PAIR_SEP.join((_item(b"4"), _item(b"4"), _item(b"4"), _item(b"1,4")))
    + b"|"
    + _PAIR_SEP.join((_item(b"4"), _item(b"6"), _item(b"4,5")))
    + rb")[\t\n\r ]*[,}]"
)


def _re2_bytes(pattern: bytes):  # -> re2._Regexp
    import re2

    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1
    return re2.compile(pattern, opts)


# ``_OBJECT_VALUES`` on the text ``card_in_raw_text`` reads (escapes decoded: no `\"` in a key, so a key is
# `"[^"]*"`), ASCII only: the raw check's gate before it reads an object's pairs one by one in Python.
_OBJECT_GATE = _re2_bytes(_OBJECT_VALUES.replace(_KEY, rb'"[^"]*"[\t\n\r ]*:[\t\n\r ]*'))


def _re2_any(two_ts: bool = True, extra: bytes = b""):
    import re2  # google-re2: a linear-time automaton, no per-position backtracking

    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1  # bytes as bytes, whatever their UTF-8 validity
    opts.dot_nl = True
    opts.case_sensitive = True
    opts.max_mem = 64 << 20
    pattern = (
        rb'\\u|"(?i:'
        + _CVC_ALTS
        + rb')"|'
        + (rb'"ts"[^\x00]*"ts"|' if two_ts else b"")
        + (extra + b"|" if extra else b"")
        + PLAIN_SPELLINGS
        + b"|"
        + ENCODED_DIGITS
        + b"|"
        + _ARRAY_ITEMS
        + b"|"
        + _OBJECT_VALUES
        + b"|"
        + _CANDIDATE
    )
    return re2.compile(pattern, opts)


_SUSPECT = _re2_any()


def body_scanner(extra: bytes):
    """The same without "`"ts"` twice", for a whole body, where that rule is a count (``clean_batch``), and
    with the caller's own alternatives ``extra`` in the same automaton: one pass finds either. A match of
    ``extra`` must never lie inside an `event_id` value (``past_event_id`` would skip it)."""
    return _re2_any(two_ts=False, extra=extra)


# The top-level `event_id` is a UUID by contract, never card data (``find_card_data`` skips it). A
# canonical UUID never holds a candidate (its digit groups are glued to hex letters, or 8 and 12 long, or
# only 3 of 4 digits), but the clean path's own alternatives (``body_scanner``) may match in one: a match
# inside the canonical UUID value of the one `"event_id"` key of an event is skipped, on the grounds of the
# epoch-ms `ts`: an accepted event has its top-level `event_id` spelt `"event_id"` (an escaped key has a
# `\u`, which is always checked), so when the key occurs once that is the top-level one.
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
    if text[p : p + 1] == b" ":
        p += 1
    if text[p : p + 1] != b":":
        return None
    p += 1
    if text[p : p + 1] == b" ":
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
    return card_in_raw_text(event_text(raw))
