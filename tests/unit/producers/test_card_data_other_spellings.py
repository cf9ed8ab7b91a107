"""Card numbers as storefronts really leak them, in spellings other than ASCII digits grouped by spaces or
dashes: a GET form's query string in `page.path` (`+` for its spaces, `%20`), fullwidth digits from a
Japanese or Chinese input method, Arabic-Indic digits, no-break spaces and en dashes from copied text.
Each is rejected by the gateway's functions (the clean path of a whole batch, the exact way, ``ingest``),
never reaches a record or the dead-letter copy, and the batch's other events still go through; what
merely looks alike (phones, prices, dates, queries) is still accepted (docs/ingest.md, "Privacy")."""

from __future__ import annotations

import sys
import time

import msgspec
import pytest

from livemetrics.card_numbers import card_in_string
from livemetrics.card_spellings import PLAIN, PLAIN_END, TAGS, _plain_char, plain_digits
from livemetrics.settings import Settings
from livemetrics.validation import Rejection, clean_batch, parse_event
from producers.gateway.ingest import ClientInfo, dead_letter, ingest, parse_body
from tests.support import factories as f

SETTINGS = Settings(topic_prefix="spell.")
CLIENT = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME)
FULLWIDTH = "４１１１ １１１１ １１１１ １１１１"


def _path(v):
    return f.page_view(page={"type": "checkout", "path": v})


def _title(v):
    return f.page_view(page={"type": "home", "path": "/", "title": v})


def _referrer(v):
    return f.page_view(page={"type": "home", "path": "/", "referrer": v})


def _error_message(v):
    ev = f.payment_failed()
    ev["payment"]["error_message"] = v
    return ev


def _name(v):
    ev = f.payment_failed()
    ev["customer"]["name"] = v
    return ev


LEAKS = {
    "GET form, + for spaces": (_path, "/checkout?number=4111+1111+1111+1111&exp=12%2F27&cvc_ok=1"),
    "URL-escaped spaces": (_path, "/pay?cc=4111%201111%201111%201111"),
    "URL-escaped dashes": (_referrer, "https://shop.example/pay?cc=5555%2D5555%2D5555%2D4444"),
    "fullwidth digits": (_title, f"カード番号 {FULLWIDTH} の確認"),
    "fullwidth, no spaces": (_error_message, "番号４１１１１１１１１１１１１１１１は無効です"),
    "fullwidth, URL-escaped": (
        _path,
        "/pay?cc=" + "".join(f"%{b:02X}" for b in "４２４２４２４２４２４２４２４２".encode()),
    ),
    "Arabic-Indic digits": (_error_message, "رقم البطاقة ٤١١١١١١١١١١١١١١١ مرفوض"),
    "no-break spaces": (_name, "4111\u00a01111\u00a01111\u00a01111"),
    "narrow no-break spaces": (_title, "Card 3782\u202f822463\u202f10005"),
    "en dashes": (_error_message, "card 4111\u20131111\u20131111\u20131111 declined"),
    # invisible format characters between the groups (Unicode Cf): shown as the bare number
    "zero-width spaces": (_title, "4111\u200b1111\u200b1111\u200b1111"),
    "soft hyphens": (_name, "4111\u00ad1111\u00ad1111\u00ad1111"),
    "joiners, BOM, bidi marks": (_error_message, "card 4111\u20601111\ufeff1111\u200e1111 declined"),
    "tag characters": (_title, "4111\U000e00201111\U000e00201111\U000e00201111"),
    "zero-width spaces, URL-escaped": (_path, "/pay?cc=4111%E2%80%8B1111%E2%80%8B1111%E2%80%8B1111"),
}

ALIKE = {
    "a phone with a plus": (_name, "+49 151 2345 6789 0"),
    "a search query": (_path, "/search?q=red+shoes+size+42&page=2"),
    "an escaped path": (_path, "/p/caf%C3%A9-42?x=1%202&y=%E2%82%AC5"),
    "a price with a no-break space": (_title, "Preis: 1\u00a0299,00 € statt 1\u00a0499,00 €"),
    "a fullwidth date": (_title, "２０２６年１２月６日 セール"),
    "fullwidth order number": (_error_message, "注文番号１２３４５６７８"),
    "a sum": (_title, "12+34+56+78"),
    "bidi marks around a price in Hebrew": (_title, "\u05de\u05d7\u05d9\u05e8 \u200f1,299.00\u200f \u20aa"),
    "a zero-width space in a date": (_title, "06\u200b.12\u200b.2026"),
}


def _now() -> int:
    return time.time_ns() // 1_000_000


def _raw(ev) -> bytes:
    return msgspec.json.encode(ev)  # raw UTF-8, as browsers send it


@pytest.mark.parametrize("case", list(LEAKS))
def test_a_card_in_another_spelling_is_rejected_and_never_leaves(case):
    place, value = LEAKS[case]
    assert card_in_string(value), plain_digits(value)
    bad, good = place(value), f.page_view()
    body = b'{"events": [' + _raw(bad) + b"," + _raw(good) + b"]}"
    assert clean_batch(body) is None  # the clean path's one scan sends it the exact way
    parsed = parse_body(body)
    assert isinstance(parsed[0], Rejection) and parsed[0].reason == "card_data", parsed[0]
    assert not isinstance(parsed[1], Rejection)
    rejected = parse_event(_raw(bad), 0)
    assert isinstance(rejected, Rejection) and rejected.reason == "card_data"
    out = ingest(body, CLIENT, SETTINGS, received_at=_now())
    assert len(out.records) == 1 and [r.reason for r in out.rejected] == ["card_data"]
    letter = dead_letter(out.rejected[0], CLIENT, _now()).decode()
    for text in (letter, *(r[2].decode() for r in out.records)):
        assert value not in text and not card_in_string(text), text


@pytest.mark.parametrize("case", list(ALIKE))
def test_what_only_looks_alike_is_accepted(case):
    place, value = ALIKE[case]
    assert not card_in_string(value), plain_digits(value)
    body = b'{"events": [' + _raw(place(value)) + b"]}"
    out = ingest(body, CLIENT, SETTINGS, received_at=_now())
    assert len(out.records) == 1 and not out.rejected, out.rejected


def test_the_plain_spelling_reads_digits_spaces_and_dashes_only():
    assert plain_digits(FULLWIDTH) == "4111 1111 1111 1111"
    assert plain_digits("٤١١١\u00a0١١١١\u2013١١١١\u30fc١١١١") == "4111 1111-1111-1111"
    # An escaped non-ASCII letter reads as itself (a boundary, as unescaped: `号4111...` in Japanese text),
    # an escaped ASCII letter stays escaped.
    assert plain_digits("a%20b%2Dc%2bd%34%C3%A9%EF%BC%94%zz%4%41") == "a b-c+d4é4%zz%4%41"
    assert plain_digits("plain ascii 50% off") == "plain ascii 50% off"


def test_every_unicode_digit_space_and_dash_is_in_the_plain_table():
    beyond = [c for c in range(PLAIN_END, sys.maxunicode + 1) if _plain_char(chr(c)) is not None]
    assert beyond == [c for c in TAGS if _plain_char(chr(c)) is not None] and all(c in PLAIN for c in beyond)
    assert len([p for p in PLAIN.values() if p.isdigit()]) >= 600  # 65 scripts' digits, and more
