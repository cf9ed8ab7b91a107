"""Card numbers spelt with HTML character references (text copied from a page's source, or written by a
template that escapes it): `&#52;&#49;...`, `&#x34;...`, `4111&#32;1111...`, `4111&nbsp;1111...`. Each was
accepted and stored; each is now refused by the gateway's functions (the byte pre-scan, the clean path of a
batch, the walk) and kept out of the dead-letter copy (``card_spellings.plain_digits``). References of other
characters (`&amp;`, `&#233;`) change nothing."""

from __future__ import annotations

import html
import json
import random

import msgspec
import pytest

from livemetrics.card_bytes import events_to_card_check, might_hold_card_data
from livemetrics.card_data import redact, scan_decoder
from livemetrics.card_numbers import card_in_string
from livemetrics.validation import Rejection, clean_batch, parse_event
from tests.support import cards
from tests.support import factories as f
from tests.support import free_text_numbers as corpus


def _decimal(text: str) -> str:
    return "".join(f"&#{ord(c)};" for c in text)


LEAKS = {
    "every character, decimal": _decimal("4111111111111111"),
    "every character, hex": "".join(f"&#x{ord(c):x};" for c in "4111 1111 1111 1111"),
    "spaces": "card 4111&#32;1111&#32;1111&#32;1111 declined",
    "no-break spaces, named": "4111&nbsp;1111&nbsp;1111&nbsp;1111",
    "dashes, named": "Karte 4111&ndash;1111&ndash;1111&ndash;1111",
    "fullwidth digits": _decimal("４１１１１１１１１１１１１１１１"),
    "a zero-width space before": "ref&#8203;4111111111111111",
    "without semicolons": "&#52&#49&#49&#49&#49&#49&#49&#49&#49&#49&#49&#49&#49&#49&#49&#49",
}
ALIKE = {
    "other references": "Caf&#233; 12 &amp; 4111 &lt;b&gt;",
    "a price": "Tom &amp; Jerry 2026&nbsp;&ndash;&nbsp;12,99&nbsp;&euro;",
    "a phone": "+49&nbsp;151&nbsp;2345&nbsp;6789",
    "an order number split by an invisible character": "order 12345&#8203;67",
}


def _event(text: str) -> dict:
    ev = f.payment_failed()
    ev["payment"]["error_message"] = text
    return ev


@pytest.mark.parametrize("case", list(LEAKS))
def test_a_card_number_spelt_with_html_references_is_refused_everywhere(case):
    """Seen failing before the change: each of these was accepted."""
    text = LEAKS[case]
    assert card_in_string(text), text
    cards.assert_refused_everywhere(_event(text), text)


@pytest.mark.parametrize("case", list(ALIKE))
def test_what_only_looks_alike_is_accepted(case):
    text = ALIKE[case]
    assert not card_in_string(text), text
    assert not isinstance(parse_event(msgspec.json.encode(_event(text)), 0), Rejection)


def test_free_text_escaped_as_html_is_refused_exactly_when_the_text_is():
    """The corpus's messages with their characters escaped (`&`, `<`, quotes) and their spaces written
    `&nbsp;` or `&#32;`: refused when, and only when, the text itself is (100,000 of each kind measured:
    docs/ingest.md)."""
    rng = random.Random(17)
    for _ in range(3000):
        text = corpus.message(rng)
        for spelt in (html.escape(text).replace(" ", "&nbsp;"), html.escape(text).replace(" ", "&#32;")):
            assert card_in_string(spelt) is card_in_string(text), (text, spelt)
