"""Red-team round (session 9, H3): identifiers hold no control character (Unicode Cc) either.

The identifier rule refused invisible format characters (Cf) because "card_declined" with a U+200B was a
second error code that looks the same in every report; a NUL, a tab, a line break, DEL or a C1 control
did the same and went through (ASCII ones skipped the check altogether): `"session_id": "sess-0001\\n"`,
`"error_code": "card_declined\\u0000"` were accepted and stored as values of their own. Now refused,
naming the field and the character, on both decode paths; display text keeps its line breaks.
"""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemetrics.validation import Rejection, clean_batch, parse_all, parse_event
from tests.support import factories as f
from tests.unit.test_contract_identifiers import FIELDS

# NUL, tab, line feed, carriage return, escape, DEL, a C1 control (NEL)
CONTROLS = ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85"]


def refusal(event: dict) -> Rejection | None:
    out = parse_event(json.dumps(event).encode(), 0)
    return out if isinstance(out, Rejection) else None


@pytest.mark.parametrize("where", sorted(FIELDS))
@pytest.mark.parametrize("ch", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("at", ["middle", "end"])
def test_an_identifier_with_a_control_character_is_refused_naming_the_field(where, ch, at):
    value = "card" + ch + "_declined" if at == "middle" else "card_declined" + ch
    bad = FIELDS[where](value)
    rejection = refusal(bad)
    assert rejection is not None and f"at `{where}`" in rejection.error, rejection
    assert f"U+{ord(ch):04X}" in rejection.error and "control character" in rejection.error
    good = f.page_view()
    body = json.dumps({"events": [good, bad]}).encode()
    assert clean_batch(body) is None  # the fast path leaves the batch to the exact one
    assert parse_all([json.dumps(good).encode(), json.dumps(bad).encode()]) is None
    assert not isinstance(parse_event(json.dumps(good).encode(), 0), Rejection)


def test_display_text_keeps_its_line_breaks_and_tabs():
    event = f.payment_failed(payment_overrides={"error_message": "Declined.\r\n\tTry another card."})
    assert refusal(event) is None


@given(st.text(min_size=1, max_size=20))
def test_an_error_code_is_refused_exactly_when_it_holds_a_control_or_format_character(text):
    bad = any(unicodedata.category(c) in ("Cc", "Cf") for c in text)
    rejection = refusal(FIELDS["$.payment.error_code"](text))
    named = rejection is not None and ("control character" in rejection.error or "invisible format" in rejection.error)
    assert named == bad, (text, rejection)
