"""Red-team round (session 9, H3): a card number after a URL-escaped `=`, `/`, `?`, `&`, `:`... is card data.

Storefronts leak card numbers in query strings (a GET form), and URLs nest: a payment page's return URL
or a referrer carries the inner query escaped once (`?next=%2Fpay%3Fcc%3D4111111111111111`) or twice
(`%253D`). The card check reads a text as spelt and in its plain spelling, which decoded only escaped
digits, spaces, dashes and pluses: after `%3D` the number's first digit sat right after the escape's hex
`D`, a digit run "inside an id", so `cc%3D4111111111111111` was accepted (as were `%26`, `%2F`, `%3F`,
`%3A`, `%22`, `%0A`..., and every double-escaped form). Now the plain spelling decodes every escaped ASCII
character that is no word character (a `"` as `'`, so that no decoded text spells the `"ts":` the raw
check skips after), up to three levels of escaping, and the byte pre-scan flags any such escape right
before a digit, so the event always gets the exact check.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemetrics import card_bytes
from livemetrics.card_data import find_card_data, redact, scan_decoder
from livemetrics.card_numbers import card_in_string, card_in_text
from livemetrics.card_spellings import PLAIN, plain_digits
from livemetrics.validation import Rejection, clean_batch
from producers.gateway.ingest import parse_body
from tests.support import cards
from tests.support import factories as f

CARD = "4111111111111111"
# Every ASCII character that is no word character and that the plain spelling did not decode already.
BOUNDARIES = [chr(c) for c in range(128) if not (chr(c).isalnum() or chr(c) in "_ -+")]


def esc(ch: str, levels: int = 1) -> str:
    out = f"%{ord(ch):02X}"
    for _ in range(levels - 1):
        out = out.replace("%", "%25")
    return out


PLACES = {
    "path": lambda v: f.page_view(page={"type": "checkout", "path": v}),
    "referrer": lambda v: f.page_view(page={"type": "home", "path": "/", "referrer": v}),
    "title": lambda v: f.page_view(page={"type": "home", "path": "/", "title": v}),
    "error_message": lambda v: f.payment_failed(payment_overrides={"error_message": v}),
    "details": lambda v: f.payment_failed(payment_overrides={"details": {"return_url": v}}),
}
LEAKS = {
    "nested query, = escaped": "/redirect?next=%2Fpay%3Fcc%3D" + CARD,
    "nested query, & and = escaped": "https://psp.example/r?u=https%3A%2F%2Fshop.example%2Fp%3Fx%3D1%26pan%3D" + CARD,
    "double-escaped =": "/redirect?next=%252Fpay%253Fcc%253D" + CARD,
    "triple-escaped =": "/r?n=%25252Fpay%25253Fcc%25253D" + CARD,
    "escaped quote": "/r?json=%7B%22pan%22%3A%22" + CARD + "%22%7D",
    "escaped line feed": "/r?note=card%0A" + CARD,
    "escaped slash, grouped": "/r?u=%2Fcard%2F4111%201111%201111%201111",
    "lower-case escape": "/r?u=cc%3d" + CARD,
}


def raw(ev: dict) -> bytes:
    return msgspec.json.encode(ev)


def checks(ev: dict) -> tuple[bool, bool, bool]:
    """(walk, raw text, gate): the three checks, each a superset of the one before."""
    r = raw(ev)
    walk = find_card_data(scan_decoder.decode(r)) is not None
    text = card_bytes.card_in_raw_text(card_bytes.event_text(r))
    gate = card_bytes._SUSPECT.search(r) is not None
    return walk, text, gate


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("case", sorted(LEAKS))
def test_a_card_after_an_escaped_boundary_is_rejected_on_every_path(case, place):
    value = LEAKS[case]
    assert card_in_string(value), plain_digits(value)
    bad, good = PLACES[place](value), f.page_view()
    assert checks(bad) == (True, True, True)
    body = b'{"events": [' + raw(bad) + b"," + raw(good) + b"]}"
    assert clean_batch(body) is None
    parsed = parse_body(body)
    assert isinstance(parsed[0], Rejection) and parsed[0].reason == "card_data", parsed[0]
    assert not isinstance(parsed[1], Rejection)


ALIKE = [
    "/p/caf%C3%A9-42?x=1%202&y=%E2%82%AC5",  # escaped letters and a price
    "/search?q=lamp%3D12%26page%3D2",  # short numbers after escapes
    "/o/ORD%2D2026%2D000123",  # an order number
    "/r?next=%2Fp%2F" + "SKU" + CARD,  # glued to letters after the escape: an id, as unescaped
    "/r?t=%3D" + "1234567890123",  # 13 digits, no issuer and Luhn: no card
]


@pytest.mark.parametrize("value", ALIKE)
def test_what_only_looks_alike_is_still_accepted(value):
    assert not card_in_string(value), plain_digits(value)
    body = b'{"events": [' + raw(PLACES["path"](value)) + b"]}"
    assert not isinstance(parse_body(body)[0], Rejection)


def test_a_decoded_quote_never_spells_the_ts_key_the_raw_check_skips_after():
    assert plain_digits("%22ts%22%3A" + CARD) == "'ts':" + CARD
    ev = PLACES["title"]("%22ts%22%3A" + CARD)
    assert checks(ev) == (True, True, True)


@given(
    ch=st.sampled_from(BOUNDARIES),
    levels=st.integers(1, 3),
    digits=cards.card_numbers(),
    place=st.sampled_from(sorted(PLACES)),
    before=st.text("abc=/?&%", max_size=4),
)
def test_walk_within_raw_text_within_the_gate_for_escaped_boundaries(ch, levels, digits, place, before):
    value = before + esc(ch, levels) + digits
    walk, text, gate = checks(PLACES[place](value))
    assert (not walk or text) and (not text or gate), value
    if ch not in "%":  # an escaped `%` before digits escapes them in turn
        assert walk, value


# Session 10 (H4): the same after an escaped non-ASCII character. Raw, a zero-width space (or any other
# character outside ASCII) before a card number is a boundary, and the number was rejected; escaped
# (`%E2%80%8B4111...`, as a URL or a form carries it), the escape's last hex digit glued onto the run as
# after `%3D` above, and the number was accepted. The plain spelling now decodes every escaped non-ASCII
# character (valid UTF-8) as itself, so it reads as it would unescaped, and the pre-scan flags the last
# byte of such an escape right before a digit.
UNICODE_BOUNDARIES = {
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "left-to-right mark": "\u200e",
    "right-to-left mark": "\u200f",
    "ideographic comma": "\u3001",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "fullwidth equals": "\uff1d",
    "bullet": "\u2022",
    "an emoji": "\U0001f4b3",
    "a letter outside ASCII": "\u00e9",
    "a CJK character (カード番号4111...)": "\u53f7",
}


def esc_utf8(ch: str, levels: int = 1) -> str:
    out = "".join(f"%{b:02X}" for b in ch.encode())
    for _ in range(levels - 1):
        out = out.replace("%", "%25")
    return out


def test_a_card_after_an_unescaped_non_ascii_character_was_already_rejected():
    """What the escaped spellings below must match: the character itself before the number."""
    for ch in UNICODE_BOUNDARIES.values():
        assert card_in_string("/r?u=" + ch + CARD), repr(ch)


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(UNICODE_BOUNDARIES))
def test_a_card_after_an_escaped_non_ascii_character_is_rejected_and_redacted(name, levels, place):
    value = "/r?u=" + esc_utf8(UNICODE_BOUNDARIES[name], levels) + CARD
    assert card_in_string(value), plain_digits(value)
    bad, good = PLACES[place](value), f.page_view()
    assert checks(bad) == (True, True, True)
    assert CARD.encode() not in raw(redact(scan_decoder.decode(raw(bad))))  # its dead-letter copy
    body = b'{"events": [' + raw(bad) + b"," + raw(good) + b"]}"
    assert clean_batch(body) is None
    parsed = parse_body(body)
    assert isinstance(parsed[0], Rejection) and parsed[0].reason == "card_data", parsed[0]
    assert not isinstance(parsed[1], Rejection)


@pytest.mark.parametrize(
    "value",
    [
        "/p/caf%C3%A9%2042",  # a short number after an escaped letter and space
        "/p/%E2%80%8B" + "1234567890123",  # 13 digits, no issuer and Luhn
        "/p/%C3%A9" + CARD + "0",  # 17 digits: no card length of that prefix
        "/p/%E2%80%8B" + CARD + "x",  # glued to a letter on its right: an id, as unescaped
        "/p/%E2%80%8Z" + CARD,  # not an escape: kept as it is
        "/p/%E2%80" + CARD,  # a UTF-8 sequence cut short: kept as it is (its hex glues on)
    ],
)
def test_what_only_looks_alike_after_escaped_non_ascii_is_still_accepted(value):
    assert not card_in_string(value), plain_digits(value)
    assert not isinstance(parse_body(b'{"events": [' + raw(PLACES["path"](value)) + b"]}")[0], Rejection)


@given(
    ch=st.characters(min_codepoint=0x80, exclude_categories=("Cs",)),
    levels=st.integers(1, 3),
    digits=cards.card_numbers(),
    place=st.sampled_from(sorted(PLACES)),
    before=st.text("abc=/?&%", max_size=4),
    lower=st.booleans(),
)
def test_walk_within_raw_text_within_the_gate_for_escaped_non_ascii(ch, levels, digits, place, before, lower):
    escaped = esc_utf8(ch, levels)
    value = before + (escaped.lower() if lower else escaped) + digits
    walk, text, gate = checks(PLACES[place](value))
    assert (not walk or text) and (not text or gate), value
    # Escaped, it reads as its plain spelling unescaped: a boundary, or the digit, space, dash or plus it
    # stands for (`%EF%BC%8B`, a fullwidth plus, is a plus before the number as `%2B` is: a phone number).
    assert walk == card_in_text(before + ch.translate(PLAIN) + digits), value
