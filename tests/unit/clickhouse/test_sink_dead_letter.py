"""The sink's dead letters blank, in ClickHouse's message (it quotes column values), every card number the
gateway refuses, with every separator the gateway's rule reads (``card_numbers.blank_card_numbers``):
before, only digit runs joined by single spaces or dashes were blanked, and a card grouped by dots, slashes,
commas, tabs, new lines or wide separators, or spelt in fullwidth digits, went to the dead-letter topic as
it was quoted."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickhouse.events_unusable import Refused
from clickhouse.sink_dead_letter import dead_letter, scrub
from livemetrics.card_numbers import card_in_text
from tests.support import cards

HEAD = b'[0,"p.page-events",0,7,'

QUOTED = {
    "dots": "4111.1111.1111.1111",
    "slashes": "4111/1111/1111/1111",
    "commas": "5555,5555,5555,4444",
    "tabs": "4111\t1111\t1111\t1111",
    "new lines": "4111\n1111\n1111\n1111",
    "two spaces": "4111  1111  1111  1111",
    "columns": "4111    1111    1111    1111",
    "a list": "4111, 1111, 1111, 1111",
    "separators mixed": "4111-1111 1111.1111",
    "fullwidth digits": "４１１１ １１１１ １１１１ １１１１",
    "URL-escaped": "4111%2F1111%2F1111%2F1111",
}


@pytest.mark.parametrize("case", list(QUOTED))
def test_a_card_number_quoted_by_clickhouse_is_blanked_with_every_separator(case):
    """Seen failing before (each of these but none of the space or dash ones was kept as quoted)."""
    card = QUOTED[case]
    error = f"Code: 53. DB::Exception: Cannot parse input: expected ',' before: '{card}': (at row 1)"
    _key, body = dead_letter(Refused(HEAD, b'{"event_id": "e", "seller_id": "s1"}', error))
    doc = json.loads(body)
    assert "Code: 53" in doc["error"] and "(at row 1)" in doc["error"]
    assert not card_in_text(doc["error"]), doc["error"]
    assert "[redacted]" in doc["error"]


@settings(max_examples=500, deadline=None)
@given(cards.card_numbers().flatmap(cards.string_spellings), st.sampled_from(["", "Code: 27. value: ", "'"]))
def test_nothing_the_gateway_refuses_is_left_in_a_dead_letters_error(spelling, before):
    text = before + spelling + before[::-1]
    assert not card_in_text(scrub(text)), (text, scrub(text))


def test_what_is_no_card_number_is_kept():
    for text in ("Code: 27. at row 1234, 5678", "2026-12-07 04:10:11.123", "10.0.12.7,10.0.12.8", "order 12, 4111"):
        assert scrub(text) == text
