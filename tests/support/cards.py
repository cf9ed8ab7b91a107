"""Hypothesis strategies for card numbers in every spelling a storefront (or an attacker) may send, and for
the ids that must never be taken for one."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal

from hypothesis import strategies as st

from livemetrics.card_numbers import ISSUERS, luhn_ok

# Published test numbers of the networks (Stripe, Adyen, PayPal docs): found whatever the IIN table says.
KNOWN_TEST_CARDS = (
    "4242424242424242",
    "4000056655665556",
    "4111111111111111",
    "4012888888881881",
    "4222222222222",
    "5555555555554444",
    "2223003122003222",
    "5200828282828210",
    "5105105105105100",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "3056930009020004",
    "36227206271667",
    "3566002020360505",
    "6200000000000005",
    "6759649826438453",
    "6771798021000008",
    "2200000000000004",
    "6062828888666688",
    "4111111111111111110",
)


@st.composite
def card_numbers(draw) -> str:
    """The digits of a Luhn-valid number with a real issuer's prefix and length."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(KNOWN_TEST_CARDS))
    _, lo, hi, lengths = draw(st.sampled_from(ISSUERS))
    n = draw(st.sampled_from([k for k in lengths if 13 <= k <= 19]))
    prefix = str(draw(st.integers(int(lo), int(hi)))).zfill(len(lo))
    body = prefix + "".join(str(draw(st.integers(0, 9))) for _ in range(n - len(prefix) - 1))
    return next(body + str(c) for c in range(10) if luhn_ok(body + str(c)))


def grouped(digits: str, sep: str, sizes: tuple[int, ...] | None = None) -> str:
    """``digits`` as cards are printed: 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4."""
    if sizes is None:
        sizes = {15: (4, 6, 5), 14: (4, 6, 4)}.get(len(digits), (4,) * 5)
    out, i = [], 0
    for size in sizes:
        if i < len(digits):
            out.append(digits[i : i + size])
            i += size
    return sep.join(out)


@st.composite
def groups_with_a_card(draw, pieces, max_size: int) -> list[str]:
    """Up to ``max_size`` digit groups drawn from ``pieces``, a card's printed groups put among them now and then."""
    groups = draw(st.lists(pieces, max_size=max_size))
    if draw(st.booleans()):
        card = grouped(draw(card_numbers()), " ").split(" ")
        at = draw(st.integers(0, len(groups)))
        groups[at:at] = card
    return groups


@st.composite
def string_spellings(draw, digits: str) -> str:
    """A string that holds ``digits`` as a card number: grouped or not, a decimal in free text, or a
    whole-number spelling (exponent, sign: these only as the whole string)."""
    kind = draw(
        st.sampled_from(["plain", "space", "dash", "float", "exponent", "signed", "other spelling", "other separator"])
    )
    if kind in ("plain", "space", "dash"):
        return draw(in_free_text(grouped(digits, {"plain": "", "space": " ", "dash": "-"}[kind])))
    if kind == "other separator":
        return draw(in_free_text(grouped(digits, draw(st.sampled_from(OTHER_SEPARATORS)))))
    if kind == "other spelling":
        return draw(in_free_text(draw(other_spellings(digits))))
    if kind == "float":
        return draw(in_free_text(number_text(digits, kind, draw)))
    return number_text(digits, kind, draw)


# What else people type between a card's groups (card_numbers.SEPARATOR: only in a printed layout, which
# ``grouped`` gives): found as well. The wide ones (spaced punctuation, 4 or more white space characters) only
# as a whole run, which ``grouped`` gives too.
OTHER_SEPARATORS = ("  ", "\t", "\n", "\r\n", ".", "/", ",", " \t ", ", ", " / ", " - ", " . ", "    ", "\t\t\t\t")


# Digits and separators as other scripts, keyboards and URLs spell them (card_numbers.plain_digits).
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


def url_escaped(text: str) -> str:
    return "".join(c if c.isascii() and c.isdigit() else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


@st.composite
def other_spellings(draw, digits: str) -> str:
    """``digits`` grouped by a plus (a form's space in a query string), a no-break or narrow space, an en
    dash or a katakana long mark, in fullwidth, Arabic-Indic or Devanagari digits, or URL-escaped."""
    sep = draw(st.sampled_from(["", "+", "\u00a0", "\u202f", "\u2013", "\u30fc", "\u3000"]))
    text = grouped(digits, sep)
    script = draw(st.sampled_from([None, FULLWIDTH, ARABIC_INDIC, DEVANAGARI]))
    if script is not None:
        text = text.translate(script)
    if draw(st.booleans()) and (sep or script):
        text = url_escaped(text)
    elif draw(st.booleans()) and not sep and not script:
        text = url_escaped(grouped(digits, " "))  # "4111%201111%201111%201111"
    return text


def number_text(digits: str, kind: str, draw) -> str:
    if kind == "float":
        return digits + "." + draw(st.sampled_from(["0", "00", "5", "999"]))
    if kind == "exponent":
        shift = draw(st.integers(0, len(digits) - 1))
        mantissa = digits[: len(digits) - shift] + ("." + digits[len(digits) - shift :] if shift else "")
        return mantissa + draw(st.sampled_from(["e", "E", "e+"])) + str(shift) if shift else mantissa + "e0"
    return draw(st.sampled_from(["+", "-"])) + digits


@st.composite
def json_numbers(draw, digits: str) -> str:
    """JSON number text whose value's integer part is ``digits``: int, float, exponent, negative."""
    kind = draw(st.sampled_from(["int", "float", "exponent", "negative", "negative exponent"]))
    if kind == "int":
        return digits
    if kind == "negative":
        return "-" + digits
    if kind == "float":
        return digits + "." + draw(st.sampled_from(["0", "25", "5"]))
    if kind == "negative exponent":
        k = draw(st.integers(1, 3))
        return digits + "0" * k + f"e-{k}"
    text = number_text(digits, "exponent", draw)
    assert Decimal(text) == int(digits)
    return text


BOUNDARY = st.sampled_from([" ", ": ", "/", "=", "#", " - ", "(", "\n", ", "])
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ ", max_size=10)


@st.composite
def in_free_text(draw, spelling: str) -> str:
    """``spelling`` standing alone inside free text ("card 4111 1111 1111 1111 declined")."""
    before = draw(st.one_of(st.just(""), st.tuples(WORDS, BOUNDARY).map("".join)))
    after = draw(st.one_of(st.just(""), st.tuples(BOUNDARY, WORDS).map("".join)))
    return before + spelling + after


def raw_json(obj, spelling_of_number: dict[str, str], separators=(", ", ": ")) -> str:
    """``json.dumps(obj)`` with each placeholder string value replaced by its raw JSON number text."""
    text = json.dumps(obj, separators=separators, ensure_ascii=False)  # raw UTF-8: what the byte scans read
    for placeholder, number in spelling_of_number.items():
        text = text.replace(json.dumps(placeholder), number)
    return text


# Ids of common kinds and lengths: never a card number.
def hex_ids(length: int):
    return st.binary(min_size=(length + 1) // 2, max_size=(length + 1) // 2).map(lambda b: b.hex()[:length])


ID_KINDS = {
    "hex16": hex_ids(16),
    "hex20": hex_ids(20),
    "hex24": hex_ids(24),
    "hex32": hex_ids(32),
    "hex40": hex_ids(40),
    "uuid": st.uuids().map(str),
    "UUID": st.uuids().map(lambda u: str(u).upper()),
    "uuid-hex": st.uuids().map(lambda u: u.hex),
    "base64-16": st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode()),
    "base64url-24": st.binary(min_size=24, max_size=24).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    "sim": st.uuids().map(lambda u: "sim-" + u.hex[:20]),
    "ord": st.uuids().map(lambda u: "ord-" + u.hex[:12]),
}


def random_id(kind: str, rng) -> str:
    """The same kinds for a plain loop (the false-positive figures in docs/ingest.md)."""
    if kind.startswith("hex"):
        return rng.randbytes(32).hex()[: int(kind[3:])]
    u = uuid.UUID(int=rng.getrandbits(128))
    if kind == "uuid":
        return str(u)
    if kind == "UUID":
        return str(u).upper()
    if kind == "uuid-hex":
        return u.hex
    if kind == "base64-16":
        return base64.b64encode(rng.randbytes(16)).decode()
    if kind == "base64url-24":
        return base64.urlsafe_b64encode(rng.randbytes(24)).decode().rstrip("=")
    if kind == "sim":
        return "sim-" + u.hex[:20]
    if kind == "ord":
        return "ord-" + u.hex[:12]
    if kind.startswith("digits"):
        n = int(kind[6:])
        return str(rng.randrange(10 ** (n - 1), 10**n))
    raise ValueError(kind)


MEASURED_KINDS = sorted(ID_KINDS) + [f"digits{n}" for n in range(13, 20)]


def false_positive_rates(n: int, seed: int = 13) -> dict[str, tuple[int, int]]:
    """kind -> (ids rejected as card numbers, ids the byte gate sends the exact way), of ``n`` per kind, each
    as a `session_id`. ``python -m tests.support.cards [n]`` prints them (the figures of docs/ingest.md)."""
    import random

    from livemetrics.card_bytes import _SUSPECT
    from livemetrics.card_numbers import card_in_string

    rng = random.Random(seed)
    out = {}
    for kind in MEASURED_KINDS:
        rejected = flagged = 0
        for _ in range(n):
            value = random_id(kind, rng)
            rejected += card_in_string(value)
            flagged += _SUSPECT.search(b'{"session_id": "%s"}' % value.encode()) is not None
        out[kind] = (rejected, flagged)
    return out


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for kind, (rejected, flagged) in false_positive_rates(count).items():
        print(
            f"{kind:14} rejected {rejected:6} of {count} ({rejected / count:.4%})  sent the exact way {flagged / count:.3%}"
        )


def assert_refused_everywhere(event: dict, value: str) -> None:
    """``event``, holding ``value``, is flagged by the byte pre-scan (beside a clean event), sent the exact way
    by the clean path of a batch, refused as card data by the walk, and ``value`` is not in its dead-letter
    copy."""
    import msgspec

    from livemetrics.card_bytes import events_to_card_check, might_hold_card_data
    from livemetrics.card_data import redact, scan_decoder
    from livemetrics.validation import Rejection, clean_batch, parse_event
    from tests.support import factories as f

    raw = msgspec.json.encode(event)
    assert events_to_card_check([msgspec.json.encode(f.page_view()), raw]) == [1]
    assert might_hold_card_data(raw)
    assert clean_batch(b'{"events": [' + raw + b"]}") is None
    rejected = parse_event(raw, 0)
    assert isinstance(rejected, Rejection) and rejected.reason == "card_data", rejected
    assert value not in json.dumps(redact(scan_decoder.decode(raw)))
