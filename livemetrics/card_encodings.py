"""Card numbers inside Base64, Base32 or hex tokens: a bounded check (docs/ingest.md, Privacy, "Encoded").

Software that stores or forwards a card number often encodes it: Base64 (standard or URL-safe, padded or
not) of ``4111111111111111`` or of ``{"pan":"4111111111111111"}``, or hex of its ASCII digits. Decoding every
token of every string would cost every event; but the Base64 of three ASCII digits has one fixed shape, and
so does their hex: a run of 9 or more ASCII digits in the encoded bytes gives three quads of
``[MNO][DTjz][AEIMQUYcgk][w-z0-5]`` in the Base64 (whatever the offset of the digits, as three bytes
always make one quad) and 13 or more give ``(3[0-9]){13}`` in the hex. ``ENCODED_DIGITS`` (an RE2
alternative of the byte pre-scan, and the Python regex of the exact check) finds those; only a token holding
one is decoded (at each of the 4 Base64 offsets, both hex parities) and its text read by
``card_numbers.card_in_text``. Two levels at most: a decoded text that has such a shape itself is decoded
once more (``card_numbers.card_in_encoded``: Base64 of hex, whose Base64 is that of ASCII digits already;
hex of Base64, the hex of three such quads, ``_HEX_OF_QUAD``).

Base32 (RFC 4648, upper case, or all lower case): five ASCII digits always make one octet shape (``_base32_octet``), and 13
digits hold a whole octet at any offset; a token holding one (or two in a row of the looser octet of digits
and separators) is decoded at each of its 8 offsets. Random Base32 gives the digits' octet about 1.7e-7
per position.

Digits grouped by separators inside the encoding (``4111 1111 ...`` or ``4111, 1111, ...`` Base64- or
hex-encoded) have a fixed shape too, a looser one: every byte of such a text is a digit or one of the 11
separator characters (``_GROUPED_BYTES``: white space, ``+ , - . /``), so each three of its bytes give a
quad whose four characters lie in four fixed sets (``_GROUPED_QUAD``, computed from those bytes), and each
byte a hex pair in ``_GROUPED_HEX``. A grouped card number has 15 bytes or more (13 digits and two
separators at the least), so 4 such quads in a row (whatever its offset) or 15 such pairs. Random bytes give
such a quad about once in 520 (4 in a row: about 1.4e-11 per position) and a text with any letter or other
punctuation (``:``, ``=``) none, so only a token of encoded digits, spaces and separators is decoded.
"""

from __future__ import annotations

import binascii
import re
from base64 import b32decode, b64decode
from collections.abc import Iterator

import re2  # google-re2: linear in the text

_QUAD = "[MNO][DTjz][AEIMQUYcgk][w-z0-5]"  # Base64 of three bytes 0x30-0x39
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_GROUPED_BYTES = b"0123456789 \t\n\r\x0b\x0c+,-./"  # digits and what card_numbers.SEPARATOR is made of


def _grouped_quad() -> str:
    """The Base64 quad of any three bytes of ``_GROUPED_BYTES``: one character set a position."""
    sets: list[set[str]] = [set(), set(), set(), set()]
    for a in _GROUPED_BYTES:
        sets[0].add(_ALPHABET[a >> 2])
        sets[3].add(_ALPHABET[a & 63])
        for b in _GROUPED_BYTES:
            sets[1].add(_ALPHABET[(a & 3) << 4 | b >> 4])
            sets[2].update(_ALPHABET[(b & 15) << 2 | c >> 6] for c in _GROUPED_BYTES)
    return "".join("[" + re.escape("".join(sorted(chars))) + "]" for chars in sets)


_GROUPED_QUAD = _grouped_quad()
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 (upper case)


def _hex_of(charset: str) -> str:
    """The hex of any one character of ``charset`` (a regex class such as ``[MNO]``), either case."""
    chars = sorted(c for c in map(chr, range(32, 127)) if re.fullmatch(charset, c))
    alts = sorted({"".join(f"[{h.upper()}{h}]" if h.isalpha() else h for h in f"{ord(c):02x}") for c in chars})
    return "(?:" + "|".join(alts) + ")"


# Two levels: the hex of a Base64 quad of three ASCII digits (``4d4445784d5445...``, hex of ``NDExMTE...``):
# three in a row, as the Base64 itself needs. (Base64 of hex is Base64 of ASCII digits already.)
_HEX_OF_QUAD = "".join(_hex_of(part) for part in re.findall(r"\[[^\]]+\]", _QUAD))


def _base32_octet(alphabet: bytes) -> str:
    """The Base32 octet of any five bytes of ``alphabet``: one character set a position (each of the 8
    characters holds 5 of the 40 bits, from one byte or two)."""
    sets: list[set[str]] = [set() for _ in range(8)]
    for k in range(8):
        first, last = 5 * k // 8, (5 * k + 4) // 8
        for a in alphabet:
            for b in alphabet if last > first else (0,):
                block = bytearray(5)
                block[first] = a
                if last > first:
                    block[last] = b
                sets[k].add(_BASE32[int.from_bytes(block, "big") >> (35 - 5 * k) & 31])
    return "".join("[" + "".join(sorted(chars)) + "]" for chars in sets)


_DIGITS_OCTET = _base32_octet(b"0123456789")  # [GH][4AEIMQUY][234YZ][DT][ACEGIKMOQS][MNO][BJRZ][Q-Z]
_GROUPED_HEX = "(?:3[0-9]|2[0bBcCdDeEfF]|0[9aAbBcCdD])"  # a digit, space, `+ , - . /`, tab, new line...
ENCODED_DIGITS = (
    rb"(?:"
    + _QUAD.encode()
    + rb"){3}|(?:3[0-9]){13}|(?:"
    + _GROUPED_QUAD.encode()
    + rb"){4}|"
    + _GROUPED_HEX.encode()
    + rb"{15}|"
    + _DIGITS_OCTET.encode()
    + rb"|(?:"
    + _base32_octet(_GROUPED_BYTES).encode()
    + rb"){2}|"
    + _DIGITS_OCTET.lower().encode()
    + rb"|(?:"
    + _base32_octet(_GROUPED_BYTES).lower().encode()
    + rb"){2}|(?:"
    + _HEX_OF_QUAD.encode()
    + rb"){3}"
)
_ENCODED_DIGITS = re.compile(ENCODED_DIGITS.decode())


def _re2_bytes(pattern: bytes) -> re2._Regexp:
    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1  # bytes as bytes: a non-ASCII character's never match
    return re2.compile(pattern, opts)


# The exact check's gate on every string of 12 characters or more: one RE2 automaton, whose cost does not
# grow with its alternatives as Python's `re` does (each one tried at each position: the Base32 and
# two-level ones made that search about twice as slow; BENCHMARKS.md, eighteenth session).
_ENCODED_DIGITS_RE2 = _re2_bytes(ENCODED_DIGITS)
_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{12,}={0,2}")
_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]{26,}")
_HEX_DIGITS = re.compile(r"(?:3[0-9]){13}|%s{15}|(?:%s){3}" % (_GROUPED_HEX, _HEX_OF_QUAD))
# Base32 in either case (lower case: Python's `base64.b32encode(...).lower()`, Go's and JavaScript's
# encoders set so, `casefold` decoders), one case a token: a token that mixes them is no Base32 of either.
_BASE32_TOKEN = re.compile(r"[A-Z2-7]{16,}={0,6}|[a-z2-7]{16,}={0,6}")
_BASE32_DIGITS = re.compile(
    r"%s|(?:%s){2}|%s|(?:%s){2}"
    % (
        _DIGITS_OCTET,
        _base32_octet(_GROUPED_BYTES),
        _DIGITS_OCTET.lower(),
        _base32_octet(_GROUPED_BYTES).lower(),
    )
)
_BASE32_TAIL = (0, 0, 2, 2, 4, 5, 5, 7)  # a last quantum's valid length (2, 4, 5, 7 characters): cut to one
_URL_SAFE = str.maketrans("-_", "+/")


def might_be_encoded_digits(text: str) -> bool:
    return len(text) >= 12 and _ENCODED_DIGITS_RE2.search(text.encode("utf-8", "surrogatepass")) is not None


def decoded_texts(text: str) -> Iterator[str]:
    """The text of every Base64 or hex token of ``text`` that may encode 9 or more ASCII digits (Base64) or 13
    or more (hex), or 12 or more (Base64) or 15 or more (hex) digits and separators, decoded as UTF-8 (bytes
    that are not, as U+FFFD: a boundary)."""
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
    for m in _BASE32_TOKEN.finditer(text):
        token = m.group()
        if not _BASE32_DIGITS.search(token):
            continue
        token = token.rstrip("=")
        for start in range(8):  # an octet starts at one of these, whatever precedes it in the token
            part = token[start:]
            part = part[: len(part) - len(part) % 8 + _BASE32_TAIL[len(part) % 8]]
            try:
                yield b32decode(part + "=" * (-len(part) % 8), casefold=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
    for m in _HEX_TOKEN.finditer(text):
        token = m.group()
        if _HEX_DIGITS.search(token):
            for start in range(2):
                part = token[start:]
                yield bytes.fromhex(part[: len(part) - len(part) % 2]).decode("utf-8", "replace")
