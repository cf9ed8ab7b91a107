"""Identifiers hold no invisible format character (Unicode Cf): "card_declined" with a zero-width space
in it was a second payment error code that looks the same in every report. Each identifier field refuses
one, naming the field and the character, on both decode paths of the gateway (and in a batch the other
events still pass); display text keeps them (emoji and some scripts need joiners and bidi marks)."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemetrics import contract
from livemetrics.validation import Rejection, clean_batch, parse_all, parse_event
from tests.support import factories as f

FIELDS = {
    "$.payment.error_code": lambda v: f.payment_failed(payment_overrides={"error_code": v}),
    "$.payment.order_id": lambda v: f.payment_failed(payment_overrides={"order_id": v}),
    "$.session_id": lambda v: f.page_view(session_id="sess-" + v),
    "$.checkout.items[1].sku": lambda v: f.checkout_started(
        checkout={
            "items": [
                {"sku": "SKU-1", "name": "Lamp", "qty": 1, "unit_price": 1},
                {"sku": v, "name": "Lamp", "qty": 1, "unit_price": 1},
            ],
            "total": 2,
            "currency": "EUR",
        }
    ),
}
# zero-width space, word joiner, right-to-left override, first strong isolate, BOM, soft hyphen, a tag
INVISIBLE = ["\u200b", "\u2060", "\u202e", "\u2068", "\ufeff", "\u00ad", "\U000e0041"]


def refusal(event: dict) -> Rejection | None:
    out = parse_event(json.dumps(event).encode(), 0)
    return out if isinstance(out, Rejection) else None


@pytest.mark.parametrize("where", sorted(FIELDS))
@pytest.mark.parametrize("ch", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_an_identifier_with_an_invisible_character_is_refused_naming_the_field(where, ch):
    bad = FIELDS[where]("card" + ch + "_declined")
    rejection = refusal(bad)
    assert rejection is not None and f"at `{where}`" in rejection.error, rejection
    assert f"U+{ord(ch):04X}" in rejection.error and "invisible format character" in rejection.error
    body = json.dumps({"events": [f.page_view(), bad]}).encode()
    assert clean_batch(body) is None  # the fast path leaves the batch to the exact one
    assert parse_all([json.dumps(f.page_view()).encode(), json.dumps(bad).encode()]) is None


@pytest.mark.parametrize("where", sorted(FIELDS))
def test_an_identifier_in_another_script_is_accepted(where):
    assert refusal(FIELDS[where]("carte_refusée_カード")) is None


def test_display_text_keeps_joiners_and_bidi_marks():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, three people joined by U+200D
    event = f.checkout_started(
        checkout={
            "items": [{"sku": "SKU-1", "name": f"Frame {family} \u200fשלום", "qty": 1, "unit_price": 1}],
            "total": 1,
            "currency": "EUR",
        }
    )
    assert refusal(event) is None


@given(st.text(min_size=1, max_size=20))
def test_an_error_code_is_refused_exactly_when_it_holds_a_cf_character(text):
    has_cf = any(unicodedata.category(c) == "Cf" for c in text)
    rejection = refusal(FIELDS["$.payment.error_code"](text))
    if has_cf:
        assert rejection is not None and "invisible format character" in rejection.error
    else:
        assert rejection is None or "invisible format character" not in rejection.error


def test_the_rule_is_in_the_openapi_descriptions():
    assert contract.IDENTIFIER_RULE
    from livemetrics.contract_schema import events_components

    text = json.dumps(events_components())
    assert text.count("invisible format characters") >= 3
