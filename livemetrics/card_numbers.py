"""What a card number is, on decoded text and numbers: the exact rules that ``livemetrics.card_data`` walks
events with (docs/ingest.md, "Privacy" says the same in prose).

A card number is 13-19 digits that start with a real issuer prefix (IIN) at a length that issuer uses and
pass Luhn. In text it must stand alone:

- digits may be grouped by single spaces, dashes or pluses (``4111 1111 1111 1111``, ``4111-1111-1111-1111``,
  and ``4111+1111+1111+1111``, a form's spaces in a URL's query string); a window of several groups is a
  candidate only when every group in it has 1-6 digits (as cards are printed: 4-4-4-4, 4-6-5, 4-4-4-4-3),
  a single group when it has 13-19 digits;
- the window does not touch an ASCII letter, digit or ``_`` on either side, nor a ``+`` on its left
  (a phone number), nor a ``.`` after a digit on its left (the decimals of a number). So a digit run
  inside a longer token (hex ids, UUIDs with or without dashes, base64, ``sim-`` ids) is never a card
  number, and "card 4111 1111 1111 1111 declined" is one. Dots do not group digits: ``4111.1111...`` is
  not found (a decimal number's integer part is: ``4111111111111111.00``).
- the same rules hold on the text's *plain* spelling (``card_spellings.plain_digits``): any Unicode decimal digit read as
  its ASCII digit (fullwidth ``４１１１``, as Japanese and Chinese input methods type them; Arabic-Indic
  ``٤١١١``...), any other Unicode space as a space (no-break ``4111\u00a01111...``), a Unicode dash as a
  dash, and URL escapes of those (``4111%201111%201111%201111``, ``%EF%BC%94``) as what they encode.

A number (a JSON number, or a string that is a whole number spelling such as ``"4.111111111111111e15"``
or ``"+4111111111111111"``) is a card number when the integer part of its exact value is one.
"""

from __future__ import annotations

import re
from decimal import Decimal

from livemetrics.card_spellings import plain_digits

_13_19, _14_19, _16_19 = range(13, 20), range(14, 20), range(16, 20)
# (issuer, first prefix, last prefix, lengths): the IIN ranges of the card networks, current and past
# (Wikipedia, "Payment card number"). Generous on purpose: a number outside every range is no card.
ISSUERS = (
    ("Visa", "4", "4", (13, 16, 19)),
    ("Mastercard", "51", "55", (16,)),
    ("Mastercard", "2221", "2720", (16,)),
    ("American Express", "34", "34", (15,)),
    ("American Express", "37", "37", (15,)),
    ("Discover", "6011", "6011", _16_19),
    ("Discover", "622126", "622925", _16_19),
    ("Discover", "644", "649", _16_19),
    ("Discover", "65", "65", _16_19),
    ("JCB", "3528", "3589", _16_19),
    ("Diners Club", "300", "305", _14_19),
    ("Diners Club", "3095", "3095", _14_19),
    ("Diners Club", "36", "36", _14_19),
    ("Diners Club", "38", "39", _14_19),
    ("Diners Club enRoute", "2014", "2014", (15,)),
    ("Diners Club enRoute", "2149", "2149", (15,)),
    ("UnionPay", "62", "62", _16_19),
    ("UnionPay", "81", "81", _16_19),
    ("Maestro", "50", "50", _13_19),
    ("Maestro", "56", "69", _13_19),
    ("Mir", "2200", "2204", _16_19),
    ("BORICA", "2205", "2205", (16,)),
    ("RuPay", "353", "353", (16,)),
    ("RuPay", "356", "356", (16,)),
    ("RuPay", "82", "82", (16,)),
    ("China T-Union", "31", "31", (19,)),
    ("InterPayment", "636", "636", _16_19),
    ("UATP", "1", "1", (15,)),
    ("GPN", "1946", "1946", (16, 18, 19)),
    ("UzCard", "8600", "8600", (16,)),
    ("Humo", "9860", "9860", (16,)),
    ("Napas", "9704", "9704", (16, 19)),
    ("Troy", "9792", "9792", (16,)),
)
_BY_LENGTH = {n: tuple((lo, hi, len(lo)) for _, lo, hi, lengths in ISSUERS if n in lengths) for n in range(13, 20)}


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


def issuer_prefix_ok(digits: str) -> bool:
    """``digits`` (13-19 of them) start with an issuer's prefix, at a length that issuer uses."""
    return any(lo <= digits[:k] <= hi for lo, hi, k in _BY_LENGTH.get(len(digits), ()))


def is_card_number(digits: str) -> bool:
    """Exactly the digits of a card number: 13-19 of them, an issuer's prefix and length, Luhn."""
    return 13 <= len(digits) <= 19 and issuer_prefix_ok(digits) and luhn_ok(digits)


_RUN = re.compile(r"[0-9]+(?:[ \-+][0-9]+)*")  # digit groups joined by single spaces, dashes or pluses
_SEP = re.compile(r"[ \-+]")
_WORD = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_TS_BEFORE = ('"ts":', '"ts": ')  # what precedes the top-level epoch-ms `ts` in raw JSON (see card_data)


def _left_ok(text: str, s: int, skip_ts: bool) -> bool:
    if s == 0:
        return True
    ch = text[s - 1]
    if ch in _WORD or ch == "+" or (ch == "." and s >= 2 and "0" <= text[s - 2] <= "9"):
        return False
    return not (skip_ts and text.endswith(_TS_BEFORE, 0, s))


def card_in_text(text: str, skip_ts: bool = False) -> bool:
    """``text`` holds a card number standing alone (module docstring), as it is spelt or in its plain
    spelling. ``skip_ts``: for raw JSON, a run right after `"ts":` or `"ts": ` does not start a window
    there (the top-level epoch-ms `ts`)."""
    if _card_in_spelling(text, skip_ts):
        return True
    if text.isascii() and "%" not in text:
        return False
    plain = plain_digits(text)
    return plain != text and _card_in_spelling(plain, skip_ts)


def _card_in_spelling(text: str, skip_ts: bool) -> bool:
    for m in _RUN.finditer(text):
        s, e = m.span()
        if e - s < 13:
            continue
        groups = _SEP.split(m.group())
        n = len(groups)
        right_ok = e == len(text) or text[e] not in _WORD
        for i in range(0 if _left_ok(text, s, skip_ts) else 1, n):
            total = 0
            for j in range(i, n):
                size = len(groups[j])
                if j > i and (size > 6 or len(groups[i]) > 6):
                    break
                total += size
                if total > 19 or (j == n - 1 and not right_ok):
                    break
                if total >= 13 and is_card_number("".join(groups[i : j + 1])):
                    return True
    return False


NUMBER_SPELLING = re.compile(r"[+\-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+\-]?[0-9]+)?")
_E12, _E19 = Decimal(10) ** 12, Decimal(10) ** 19


def card_in_number(text: str) -> bool:
    """The integer part of the exact value of a number spelt ``text`` (JSON or ``repr``) is a card number."""
    try:
        value = Decimal(text).copy_abs()  # exact: no context, no rounding
        return value.is_finite() and _E12 <= value < _E19 and is_card_number(str(int(value)))
    except ArithmeticError:  # not a number, or an exponent beyond what Decimal compares
        return False


def card_in_string(s: str) -> bool:
    """A string value or object key: a card number standing alone in it, or it spells one as a number."""
    return (len(s) >= 13 and card_in_text(s)) or (NUMBER_SPELLING.fullmatch(s) is not None and card_in_number(s))
