"""Card numbers inside Base64 or hex tokens: a bounded check (docs/ingest.md, Privacy, "Encoded").

Software that stores or forwards a card number often encodes it: Base64 (standard or URL-safe, padded or
not) of ``4111111111111111`` or of ``{"pan":"4111111111111111"}``, or hex of its ASCII digits. Decoding every
token of every string would cost every event; but the Base64 of three ASCII digits has one fixed shape, and
so does their hex: a run of 9 or more ASCII digits in the encoded bytes gives three quads of
``[MNO][DTjz][AEIMQUYcgk][w-z0-5]`` in the Base64 (whatever the offset of the digits, as three bytes
always make one quad) and 13 or more give ``(3[0-9]){13}`` in the hex. ``ENCODED_DIGITS`` (an RE2
alternative of the byte pre-scan, and the Python regex of the exact check) finds those; only a token holding
one is decoded (at each of the 4 Base64 offsets, both hex parities) and its text read by
``card_numbers.card_in_text``. One level: an encoded token inside a decoded one is not decoded again.
Digits grouped by separators inside the encoding (``4111 1111 ...`` Base64-encoded) have no fixed shape
and are not found.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from collections.abc import Iterator

_QUAD = "[MNO][DTjz][AEIMQUYcgk][w-z0-5]"  # Base64 of three bytes 0x30-0x39
ENCODED_DIGITS = rb"(?:" + _QUAD.encode() + rb"){3}|(?:3[0-9]){13}"
_ENCODED_DIGITS = re.compile(ENCODED_DIGITS.decode())
_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{12,}={0,2}")
_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]{26,}")
_HEX_DIGITS = re.compile(r"(?:3[0-9]){13}")
_URL_SAFE = str.maketrans("-_", "+/")


def might_be_encoded_digits(text: str) -> bool:
    return len(text) >= 12 and _ENCODED_DIGITS.search(text) is not None


def decoded_texts(text: str) -> Iterator[str]:
    """The text of every Base64 or hex token of ``text`` that may encode 9 or more ASCII digits (Base64) or 13
    or more (hex), decoded as UTF-8 (bytes that are not, as U+FFFD: a boundary)."""
    for m in _BASE64_TOKEN.finditer(text):
        token = m.group()
        if not _ENCODED_DIGITS.search(token):
            continue
        token = token.rstrip("=").translate(_URL_SAFE)
        for start in range(4):  # a quad starts at one of these, whatever precedes it in the token
            part = token[start:]
            if len(part) % 4 == 1:
                part = part[:-1]
            try:
                yield b64decode(part + "=" * (-len(part) % 4), validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
    for m in _HEX_TOKEN.finditer(text):
        token = m.group()
        if _HEX_DIGITS.search(token):
            for start in range(2):
                part = token[start:]
                yield bytes.fromhex(part[: len(part) - len(part) % 2]).decode("utf-8", "replace")
