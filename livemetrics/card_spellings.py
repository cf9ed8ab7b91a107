"""Other spellings of a card number's digits, spaces and dashes (and fullwidth dots, commas and slashes): the text's *plain spelling*
(``plain_digits``, which ``livemetrics.card_numbers`` reads as well as the text itself) and what, in an
event's raw bytes, shows that its plain spelling may hold a digit run that its own spelling does not
(``PLAIN_SPELLINGS``, an alternative of the byte pre-scan in ``livemetrics.card_bytes``).

A window that the plain spelling adds holds a character that spelling changed, or starts right after
one: a non-ASCII digit (raw or URL-escaped), an escaped ASCII digit, a non-ASCII space or dash, or any escape,
in a separator between two ASCII digits (with any white space and punctuation beside it: a separator is any run
of white space, with or without one punctuation mark), an escaped space, dash or plus (ASCII or not) right after or right before an ASCII digit
(``4111%201111...``, ``%204111...``: the escape's own hex digits glue onto a digit run in the raw
spelling), or before a dot and a digit (``%20.4111...``: a dot after a digit is a decimal point, after a
space it is not), or an escaped ASCII character that is no word character right before an ASCII digit
(``cc%3D4111...``: a nested URL's query, whose escape's hex glued onto the run; decoded through up to
``ESCAPE_LEVELS`` levels, ``%253D``, whose raw bytes have ``%25`` right before a digit), or an escaped
non-ASCII character right before an ASCII digit (``%E2%80%8B4111...``, a zero-width space: decoded as
itself, a boundary as it is unescaped; its escape's last byte is a UTF-8 continuation byte). Any other
change on a window's edge adds none: a space or dash there is no more of a boundary than the non-ASCII
character it stands for, and a plus is less of one. Escapes of ASCII letters are kept as they are. So
``PLAIN_SPELLINGS``, one RE2 alternative, matches each of those, and the event goes the exact way.

The raw bytes come from ``PLAIN`` (the same table ``plain_digits`` reads), grouped by their
leading bytes so that the automaton stays small.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict


def _plain_char(ch: str) -> str | None:
    """The ASCII character a non-ASCII digit, space or dash stands for in a card number, else None."""
    cat = unicodedata.category(ch)
    if cat == "Nd":
        return str(unicodedata.decimal(ch))
    if cat in ("Zs", "Cf"):  # Cf: invisible format characters (zero-width space, soft hyphen, BOM, bidi marks,
        return " "  # tags): `4111\u200b1111...` shows as the bare number, so they separate groups as a space does
    if cat == "Pd" or ch in "\u2212\u30fc":  # dashes, the minus sign, the katakana long mark (Japanese dash)
        return "-"
    if ch == "\uff0b":  # the fullwidth plus
        return "+"
    if ch in _FULLWIDTH_SEPARATORS:  # what a Japanese or Chinese input method types for `.`, `,` and `/`
        return _FULLWIDTH_SEPARATORS[ch]
    return None


_FULLWIDTH_SEPARATORS = {"\uff0e": ".", "\uff0c": ",", "\uff0f": "/"}


# Every such character, for str.translate (one character for one: positions do not move); the byte
# pre-scan's alternative below is built from the same table. Every Unicode digit, space, dash and format
# character lies in the first two planes but the tags (tests/unit/producers/test_card_data_other_spellings.py
# checks all of Unicode): reading only those keeps the import fast.
PLAIN_END = 0x20000
TAGS = range(0xE0000, 0xE0080)  # format characters (Cf) beyond: the tag characters (and their language tag)
PLAIN = {ord(c): p for c in map(chr, (*range(128, PLAIN_END), *TAGS)) if (p := _plain_char(c)) is not None}
_ESCAPED = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_ASCII_PLAIN = frozenset("0123456789 -+")
# Escaped ASCII characters that are no word character (`=`, `&`, `/`, `?`, `:`, `%`, controls...): a boundary
# once decoded, where the escape's own hex glued onto a digit run after it (`cc%3D4111...`, a nested URL's
# query). Decoded as themselves, but `"` as `'`: no decoded text may spell the `"ts":` after which the raw
# check skips a digit run (card_bytes). Up to ESCAPE_LEVELS levels of escaping (`%253D` is `%3D` is `=`).
_BOUNDARY = {c: ("'" if c == '"' else c) for c in map(chr, range(128)) if not (c.isalnum() or c == "_")}
ESCAPE_LEVELS = 3


def _unescaped(m: re.Match[str]) -> str:
    """A run of URL escapes with each ASCII digit, space, dash or plus decoded, each non-ASCII character
    (valid UTF-8; ``PLAIN`` maps the digits, spaces and dashes among them next) and each ASCII character
    that is no word character (``_BOUNDARY``); every other escape (ASCII letters, bytes that are no UTF-8)
    kept as it is."""
    run = m.group()
    data = bytes.fromhex(run.replace("%", ""))
    out, i = [], 0
    while i < len(data):
        b = data[i]
        n = 1 if b < 0x80 else 2 if 0xC2 <= b < 0xE0 else 3 if 0xE0 <= b < 0xF0 else 4 if 0xF0 <= b < 0xF5 else 1
        try:
            c = data[i : i + n].decode("utf-8")
        except UnicodeDecodeError:
            c, n = "", 1
        if c in _ASCII_PLAIN or (c and ord(c) >= 0x80):  # ``PLAIN`` maps the non-ASCII digits, spaces, dashes
            out.append(c)
        else:
            out.append(_BOUNDARY.get(c) or run[3 * i : 3 * (i + n)])
        i += n
    return "".join(out)


# HTML character references (text copied out of a page's source, or written by a template that escapes it):
# `&#52;&#49;...`, `&#x34;...`, and the named ones of spaces and dashes (`4111&nbsp;1111...`). Each one of a
# character ``PLAIN`` maps, or of an ASCII digit, space, dash, plus or other non-word character
# (``_BOUNDARY``), is read as that character; any other is kept as it is (`&amp;`, `&#233;`).
_REFERENCE = re.compile(r"&#(?:[xX]([0-9A-Fa-f]{1,6})|([0-9]{1,7}));?|&([A-Za-z]{2,14});")
_NAMED = {
    "nbsp": "\u00a0",
    "ensp": "\u2002",
    "emsp": "\u2003",
    "thinsp": "\u2009",
    "numsp": "\u2007",
    "puncsp": "\u2008",
    "hairsp": "\u200a",
    "NoBreak": "\u2060",
    "ZeroWidthSpace": "\u200b",
    "ndash": "\u2013",
    "mdash": "\u2014",
    "minus": "\u2212",
    "hyphen": "\u2010",
    "dash": "\u2010",
    "period": ".",
    "comma": ",",
    "sol": "/",
    "plus": "+",
    "Tab": "\t",
    "NewLine": "\n",
}
REFERENCE_NAMES = tuple(_NAMED)


def _referenced(m: re.Match[str]) -> str:
    if m.group(3) is not None:
        return _NAMED.get(m.group(3), m.group())
    code = int(m.group(1), 16) if m.group(1) is not None else int(m.group(2))
    if code >= 0x110000 or not (
        code in PLAIN or (code < 128 and (chr(code) in _ASCII_PLAIN or chr(code) in _BOUNDARY))
    ):
        return m.group()
    return _BOUNDARY.get(chr(code), chr(code))


def plain_digits(text: str) -> str:
    """``text`` with every way of spelling a digit, space or dash other than ASCII's read as ASCII's, and
    escaped boundaries decoded (module docstring); ``text`` itself when it has none."""
    if "&" in text:
        text = _REFERENCE.sub(_referenced, text)
    for _ in range(ESCAPE_LEVELS):
        if "%" not in text:
            break
        plain = _ESCAPED.sub(_unescaped, text)
        if plain == text:
            break
        text = plain
    return text if text.isascii() else text.translate(PLAIN)


def _hex_byte(b: int) -> bytes:
    """An escape ``%XX`` of the byte ``b``, either case of its hex letters."""
    return b"%" + "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in f"{b:02x}").encode()


def _alternatives(chars: list[str], escaped: bool) -> bytes:
    """One alternative matching the UTF-8 bytes of any of ``chars`` (or their escapes)."""
    tails: dict[bytes, list[int]] = defaultdict(list)
    for ch in chars:
        raw = ch.encode()
        tails[raw[:-1]].append(raw[-1])
    alts = []
    for head, last in sorted(tails.items()):
        if escaped:
            alts.append(b"".join(_hex_byte(b) for b in head) + b"(?:" + b"|".join(_hex_byte(b) for b in last) + b")")
        else:
            alts.append(b"".join(b"\\x%02x" % b for b in head) + b"[" + b"".join(b"\\x%02x" % b for b in last) + b"]")
    return b"(?:" + b"|".join(alts) + b")"


_DIGITS = sorted(chr(c) for c, p in PLAIN.items() if p.isdigit())
_SEPARATORS = sorted(chr(c) for c, p in PLAIN.items() if not p.isdigit())
_RAW_SEPARATOR = _alternatives(_SEPARATORS, escaped=False)
# White space in an event's bytes: ASCII (raw between JSON tokens, escaped in a string) or any other.
_WHITE = rb"(?:[ \t\n\r\x0b\x0c]|\\[fnrt]|" + _RAW_SEPARATOR + rb")"
# Any escape (of up to ESCAPE_LEVELS levels), and what may stand between two digit groups in a separator:
# punctuation, white space (raw, JSON-escaped, non-ASCII) or escapes (of those or of anything: a superset).
_ANY_ESCAPE = rb"%(?:25){0," + str(ESCAPE_LEVELS - 1).encode() + rb"}[0-9A-Fa-f]{2}"
_SPAN = rb"(?:[\-+./,]|\\/|" + _WHITE + rb"|" + _ANY_ESCAPE + rb")"
# An escaped space, dash or plus, ASCII or not: what separates groups (or, after one, starts a window).
_ESCAPED_SEPARATOR = rb"(?:%2[0dDbB]|" + _alternatives(_SEPARATORS, escaped=True) + rb")"

# An escaped ASCII character that is no word character, right before a digit (``_BOUNDARY``): `%3D4111...`;
# `%253D4111...` matches as `%25` then `3`, and so on for every level. Or the escaped last byte of a
# non-ASCII character (a UTF-8 continuation byte, 0x80-0xBF), right before a digit: `%E2%80%8B4111...`, a
# zero-width space (every non-ASCII character is a boundary, as it is unescaped). Escaped again, `%258B4...`
# is matched by the first case, `%25AD4...` (soft hyphen) and `%2525AD4...` by the second: a `25` a level.
_ESCAPED_BOUNDARY = (
    rb"%(?:[01][0-9A-Fa-f]|2[0-9A-Fa-f]|3[A-Fa-f]|40|5[B-Eb-e]|60|7[B-Fb-f])[0-9]"
    + rb"|%(?:25){0,"
    + str(ESCAPE_LEVELS - 1).encode()
    + rb"}[89ABab][0-9A-Fa-f][0-9]"
)

PLAIN_SPELLINGS = b"|".join(
    (
        _alternatives(_DIGITS, escaped=False),
        _alternatives(_DIGITS, escaped=True),
        rb"%3[0-9]",
        _ESCAPED_BOUNDARY,
        # a separator (card_numbers.SEPARATOR: any run of white space, with or without one punctuation mark)
        # holding a non-ASCII space or dash, or an escape: `4111\u3000\u30001111`, `4111 %2C 1111`
        rb"[0-9]" + _SPAN + rb"*(?:" + _RAW_SEPARATOR + rb"|" + _ANY_ESCAPE + rb")" + _SPAN + rb"*[0-9]",
        rb"[0-9]" + _ESCAPED_SEPARATOR,
        _ESCAPED_SEPARATOR + rb"\.?[0-9]",  # `.`: a dot after a digit (an escape's hex) is a decimal point
        # an HTML numeric character reference (of a digit, or anything: a superset), or a named one of a space,
        # dash or separator right after a digit (``plain_digits``, ``_REFERENCE``)
        rb"&#|[0-9]&(?:" + "|".join(REFERENCE_NAMES).encode() + rb");",
    )
)
