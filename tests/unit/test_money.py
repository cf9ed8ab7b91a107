"""Money in the contract: a JSON number or a decimal string, read exactly, checked (range, scale), sent on
in canonical form; the gateway's clean path gives the very same values as the exact path."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.contract import MONEY_MAX, MONEY_SCALE, Event, EventIn, decode, encode, money, money_text
from livemetrics.validation import Rejection, clean_batch, parse_event
from tests.support import factories as f

BAD = "an amount must be a decimal from 0 to 1000000000000 with at most 4 decimal places"


def amount_of(raw_amount: str) -> Decimal | str:
    """The payment amount the gateway accepts for this JSON text, or its error."""
    body = json.dumps(f.payment()).replace('"amount": 39.0', f'"amount": {raw_amount}')
    assert raw_amount in body
    r = parse_event(body.encode(), 0)
    return r.error if isinstance(r, Rejection) else r.payment.amount


@pytest.mark.parametrize(
    "raw, want",
    [
        ('"59.90"', "59.90"),
        ("59.90", "59.90"),
        ("0.1", "0.1"),
        ('"0"', "0"),
        ("0", "0"),
        ("1000000000000", "1000000000000"),
        ('"1000000000000.0000"', "1000000000000.0000"),
        ('"1E+3"', "1000.0000"),
        ("1e3", "1000.0000"),
        ('"-0"', "0.0000"),
        ('"59.900000"', "59.9000"),
        ("12345678901.2345", "12345678901.2345"),  # more digits than a float keeps: still exact
    ],
)
def test_numbers_and_decimal_strings_are_read_exactly(raw, want):
    got = amount_of(raw)
    assert isinstance(got, Decimal) and str(got) == want


@pytest.mark.parametrize(
    "raw",
    [
        '"NaN"',
        '"Infinity"',
        '"-Infinity"',
        "-0.01",
        '"-1"',
        "1000000000000.0001",
        "1e13",
        '"59.12345"',
        "0.00001",
        '"1e400000000"',
    ],
)
def test_amounts_out_of_range_or_scale_are_refused_naming_the_field(raw):
    assert amount_of(raw) == BAD + " - at `$.payment.amount`"


def test_every_amount_of_an_event_is_checked():
    ev = f.checkout_started()
    ev["checkout"]["items"][0]["unit_price"] = "1.23456"
    assert parse_event(json.dumps(ev).encode(), 0).error == BAD + " - at `$.checkout.items[0].unit_price`"
    ev = f.payment_failed()
    ev["payment"]["items"] = [{"sku": "s", "name": "n", "qty": 1, "unit_price": "-1"}]
    assert parse_event(json.dumps(ev).encode(), 0).error == BAD + " - at `$.payment.items[0].unit_price`"


def test_a_value_that_is_no_decimal_is_refused_by_the_schema():
    assert amount_of('"59,90"') == "Invalid decimal string - at `$.payment.amount`"
    assert amount_of("true") == "Expected `decimal`, got `bool` - at `$.payment.amount`"


def test_a_float_sum_is_not_what_is_sent_on():
    body = json.dumps({"events": [f.checkout_started(), f.payment_succeeded()]})
    body = body.replace('"total": 39.0', '"total": "0.3"').replace('"amount": 39.0', '"amount": 0.30')
    exact = [parse_event(json.dumps(e).encode(), 0) for e in json.loads(body)["events"]]
    assert exact[0].checkout.total + Decimal("0") == Decimal("0.3") and exact[1].payment.amount == Decimal("0.30")
    assert (exact[0].checkout.total * 2) - Decimal("0.6") == 0  # a Decimal, not 0.3 as a float


places = st.integers(0, MONEY_SCALE + 2)
amounts = st.one_of(
    st.decimals(0, MONEY_MAX, places=MONEY_SCALE),
    st.builds(
        lambda d, p: d.quantize(Decimal(1).scaleb(-p)) if p <= MONEY_SCALE + 2 else d,
        st.decimals(-10, MONEY_MAX * 2, allow_nan=False, allow_infinity=False, places=6),
        places,
    ),
    st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-0"), Decimal("1E+3"), Decimal("0E-10")]),
)
spellings = st.sampled_from(["number", "string"])


@settings(max_examples=300, deadline=None)
@given(amounts, spellings)
def test_the_clean_path_and_the_exact_path_agree_and_kafka_carries_the_value_exactly(d, spelling):
    if d.is_nan() and spelling == "number":
        return  # JSON has no NaN number
    text = str(d) if spelling == "string" else (format(d, "f") if d.is_finite() else "1e999999")
    raw = json.dumps({"events": [f.payment_succeeded()]}).replace(
        '"amount": 39.0', f'"amount": {json.dumps(text) if spelling == "string" else text}'
    )
    single = raw[len('{"events": [') : -2].encode()
    exact = parse_event(single, 0)
    clean = clean_batch(raw.encode())
    want = money(Decimal(text))  # what the text says (a number spelt "0" for 0E+2 is exactly 0)
    if want is None:
        assert isinstance(exact, Rejection) and clean is None
        return
    assert isinstance(exact, EventIn) and exact.payment.amount == want
    if spelling == "string":  # as sent (a JSON number -0 is read as the integer 0: the same value)
        assert str(exact.payment.amount) == str(want)
    want = exact.payment.amount
    if clean is not None:  # the clean path may always leave a body to the exact path; never with other values
        assert str(clean[0].payment.amount) == str(exact.payment.amount)
    assert want == d and -MONEY_SCALE <= want.as_tuple().exponent <= 0 and not want.is_signed()
    # through Kafka: a decimal string, decoded back to the same Decimal, never through a float
    ev = Event(
        event_id="e",
        type="payment_succeeded",
        seller_id="s",
        session_id="sess-1",
        ts=1,
        received_at=1,
        payment=exact.payment,
    )
    wire = encode(ev)
    assert f'"amount":"{want}"'.encode() in wire
    assert str(decode(wire).payment.amount) == str(want)


def test_money_text_writes_sums_exactly_for_the_api():
    assert money_text(Decimal("59.9000")) == "59.90"
    assert money_text(Decimal("0.1250")) == "0.125"
    assert money_text(Decimal("1000000000000.0000")) == "1000000000000.00"
    assert money_text(Decimal("0.0000")) == "0.00"
    big = Decimal("12345678901234567890123456789012.3456")  # a Decimal(38, 4) sum: wider than 28 digits
    assert money_text(big) == "12345678901234567890123456789012.3456"
    assert msgspec.json.decode(msgspec.json.encode({"v": money_text(Decimal("0.3000"))})) == {"v": "0.30"}
