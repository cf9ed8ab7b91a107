"""A customer's phone number as it is stored, E.164 with or without its plus (``+4915123456789``), is no card
number: in ``customer.phone`` one run of at most 15 digits (what a phone number has at most) is a phone
number, and a whole number spelling counts only past 15 digits (``card_numbers.card_in_phone``). Before,
~1 % of generated E.164 numbers passed the issuer table and Luhn and the event was refused as card data. A
card number of 16-19 digits, or grouped as cards are printed, is still refused in the field, and every
spelling elsewhere as before."""

from __future__ import annotations

import random

import msgspec
import pytest

from livemetrics.card_data import card_field_error
from livemetrics.validation import Rejection, parse_event
from producers.gateway.ingest import parse_body
from tests.support import factories as f

COUNTRY_CODES = ("1", "7", "20", "27", "33", "34", "39", "44", "49", "55", "61", "81", "86", "90", "91", "234", "971")


def _e164(rng: random.Random) -> str:
    cc = rng.choice(COUNTRY_CODES)
    return "+" + cc + "".join(str(rng.randrange(10)) for _ in range(rng.randint(11, 15) - len(cc)))


def _with_phone(phone: str) -> bytes:
    return msgspec.json.encode(f.payment_failed(customer=f.customer(phone=phone)))


def test_phone_numbers_as_they_are_stored_are_accepted():
    """Seen failing on the old code: 18 of the first 2,000 were refused as card data."""
    rng = random.Random(17)
    phones = [_e164(rng) for _ in range(2000)]
    phones += [p[1:] for p in phones[:1000]]  # stored without the plus
    refused = []
    for at in range(0, len(phones), 500):  # the gateway's batches
        body = b'{"events": [' + b",".join(_with_phone(p) for p in phones[at : at + 500]) + b"]}"
        refused += [phones[at + r.index] for r in parse_body(body) if isinstance(r, Rejection)]
    assert refused == []
    assert not any(card_field_error("phone", p, phone=True) for p in phones)


@pytest.mark.parametrize(
    "phone", ["4111111111111111", "+4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111"]
)
def test_a_card_number_in_the_phone_field_is_still_refused(phone):
    rejected = parse_event(_with_phone(phone), 0)
    assert isinstance(rejected, Rejection) and rejected.reason == "card_data", rejected
    assert "$.customer.phone" in rejected.error
    assert card_field_error("phone", phone, phone=True)


@pytest.mark.parametrize("phone", ["+378282246310005", "378282246310005", "4222222222222"])
def test_the_limit_a_card_of_at_most_15_digits_ungrouped_is_a_phone_number(phone):
    """Documented (docs/ingest.md, Privacy): 13-15 digits in one run, with or without a plus, are how a phone
    number is stored, in this field."""
    assert not isinstance(parse_event(_with_phone(phone), 0), Rejection)


def test_the_same_spelling_elsewhere_is_refused_as_before():
    ev = f.payment_failed(payment_overrides={"error_message": "+378282246310005"})
    rejected = parse_event(msgspec.json.encode(ev), 0)
    assert isinstance(rejected, Rejection) and rejected.reason == "card_data", rejected
