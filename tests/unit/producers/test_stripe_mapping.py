"""Stripe webhook verification and the mapping onto contract payment events (pure)."""

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemetrics.validation import Rejection, parse_event
from producers.gateway.providers import stripe
from tests.support import stripe_events as se

SECRET = "whsec_test_5Wh3Fz0dJkQ4vR2nMbXcLp9T"
NOW = 1_796_000_000


def valid(ev: dict) -> None:
    parsed = parse_event(msgspec.json.encode(ev), 0)
    assert not isinstance(parsed, Rejection), parsed.error


# --- signatures --------------------------------------------------------------------------------------
def test_a_documented_signature_verifies():
    b = se.body(se.envelope("charge.failed", se.failed_charge()))
    stripe.verify(b, se.sign(b, SECRET, NOW), SECRET, NOW)


def test_a_rolled_secret_verifies_with_any_of_several_v1():
    b = b'{"id": "evt_1"}'
    header = se.sign(b, "whsec_old", NOW) + "," + se.sign(b, SECRET, NOW).split(",")[1]
    stripe.verify(b, header, SECRET, NOW)


@pytest.mark.parametrize(
    "case, header, message",
    [
        ("missing", None, "missing Stripe-Signature"),
        ("no timestamp", "v1=abc", "no timestamp"),
        ("no v1", f"t={NOW},v0=abc", "no v1 signature"),
        ("other secret", "sign:whsec_other", "no v1 signature matches"),
        ("stale", "sign-at:-301", "more than 300 s"),
        ("future", "sign-at:301", "more than 300 s"),
    ],
)
def test_a_bad_signature_is_refused_with_its_reason(case, header, message):
    b = b'{"id": "evt_1"}'
    if header and header.startswith("sign:"):
        header = se.sign(b, header[5:], NOW)
    elif header and header.startswith("sign-at:"):
        header = se.sign(b, SECRET, NOW + int(header[8:]))
    with pytest.raises(stripe.SignatureError, match=message):
        stripe.verify(b, header, SECRET, NOW)


def test_a_changed_body_no_longer_verifies():
    b = b'{"amount": 100}'
    with pytest.raises(stripe.SignatureError):
        stripe.verify(b'{"amount": 1000}', se.sign(b, SECRET, NOW), SECRET, NOW)


# --- amounts -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "minor, currency, want",
    [(5990, "EUR", "59.90"), (5990, "JPY", "5990"), (12345, "KWD", "12.345"), (0, "USD", "0.00")],
)
def test_amounts_follow_the_currency_exponent(minor, currency, want):
    assert stripe.amount(minor, currency) == want


@given(st.integers(0, 10**12), st.sampled_from(["EUR", "USD", "JPY", "KRW", "BHD", "TND", "GBP"]))
def test_amount_is_exact(minor, currency):
    exp = 0 if currency in stripe.ZERO_DECIMAL else 3 if currency in stripe.THREE_DECIMAL else 2
    assert Decimal(stripe.amount(minor, currency)).scaleb(exp) == minor


@pytest.mark.parametrize("bad", [-1, 1.5, "100", None, True])
def test_a_non_integer_amount_is_refused(bad):
    with pytest.raises(ValueError, match="not a non-negative integer"):
        stripe.amount(bad, "EUR")


# --- mapping -----------------------------------------------------------------------------------------
def test_a_failed_intent_maps_to_a_payment_failed_with_customer_order_and_decline():
    ev = stripe.to_event("shop-1", se.envelope("payment_intent.payment_failed", se.failed_intent(), created=NOW))
    valid(ev)
    assert ev["type"] == "payment_failed" and ev["ts"] == NOW * 1000
    assert ev["session_id"] == "sess-stripe-0001"
    assert ev["payment"] | {"details": None} == {
        "method": "card",
        "amount": "59.90",
        "currency": "EUR",
        "order_id": "ORD-1001",
        "error_code": "insufficient_funds",
        "error_message": "Your card has insufficient funds.",
        "details": None,
    }
    assert ev["payment"]["details"]["provider"] == "stripe"
    assert ev["customer"] == {"email": "ada@example.com", "phone": "+44 20 7946 0958", "name": "Ada Lovelace"}


def test_both_failure_events_of_one_charge_are_one_event():
    a = stripe.to_event("shop-1", se.envelope("payment_intent.payment_failed", se.failed_intent()))
    b = stripe.to_event("shop-1", se.envelope("charge.failed", se.failed_charge()))
    valid(b)
    assert a["event_id"] == b["event_id"] and b["payment"]["error_code"] == "card_declined"


def test_a_redelivery_is_the_same_event_and_another_seller_another_one():
    e = se.envelope("payment_intent.succeeded", se.intent())
    one, again = stripe.to_event("shop-1", e), stripe.to_event("shop-1", dict(e, id="evt_other_delivery"))
    valid(one)
    assert one["type"] == "payment_succeeded" and "error_code" not in one["payment"]
    assert one["event_id"] == again["event_id"] != stripe.to_event("shop-2", e)["event_id"]


def test_failures_without_a_charge_are_told_apart_by_their_stripe_event():
    a = stripe.to_event(
        "s", se.envelope("payment_intent.payment_failed", se.failed_intent(charge=None), evt_id="evt_a")
    )
    b = stripe.to_event(
        "s", se.envelope("payment_intent.payment_failed", se.failed_intent(charge=None), evt_id="evt_b")
    )
    assert a["event_id"] != b["event_id"]


def test_without_our_session_id_the_intent_is_the_session():
    ev = stripe.to_event("s", se.envelope("payment_intent.succeeded", se.intent(metadata={})))
    valid(ev)
    assert ev["session_id"] == "stripe-pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert ev["payment"]["order_id"] == "pi_3MtwBwLkdIwHu7ix28a3tqPa"


def test_contact_values_the_contract_refuses_are_left_out_not_the_event():
    obj = se.failed_charge(
        billing_details={"email": "not an email", "phone": "call me", "name": "Ada"}, receipt_email="ada@example.com"
    )
    ev = stripe.to_event("s", se.envelope("charge.failed", obj))
    valid(ev)
    assert ev["customer"] == {"email": "ada@example.com", "name": "Ada"}


def test_other_event_types_are_not_mapped():
    assert stripe.to_event("s", se.envelope("customer.created", {"id": "cus_1"})) is None


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"currency": "eur"}, "with an id"),
        ({"id": "pi_1", "currency": "euro"}, "not a currency code"),
        ({"id": "pi_1", "currency": "eur", "amount": "5"}, "non-negative integer"),
    ],
)
def test_a_mapped_type_without_what_the_contract_needs_says_what(obj, message):
    with pytest.raises(ValueError, match=message):
        stripe.to_event("s", se.envelope("payment_intent.succeeded", obj))


# --- odd shapes and headers: a clear refusal, never another exception (a 500) ---------------------------
@pytest.mark.parametrize(
    "header",
    [
        "t=\xb2,v1=ab",  # '²' (a header is read as Latin-1): str.isdigit says yes, int() refuses it
        "t=" + "1" * 5000 + ",v1=ab",  # int() refuses over 4,300 digits
        "t=" + "9" * 13 + ",v1=ab",
        "t=\u0661\u0662,v1=ab",  # Arabic-Indic digits: int() would take them
    ],
)
def test_a_timestamp_that_is_no_unix_seconds_is_a_signature_error(header):
    with pytest.raises(stripe.SignatureError, match="no timestamp"):
        stripe.verify(b"{}", header, SECRET, NOW)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=6,
)
_ENVELOPES = [
    se.envelope("payment_intent.payment_failed", se.failed_intent(), created=NOW),
    se.envelope("charge.failed", se.failed_charge(), created=NOW),
    se.envelope("payment_intent.succeeded", se.intent(), created=NOW),
]


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))


def _replaced(node, path, value):
    if not path:
        return value
    return {**node, path[0]: _replaced(node[path[0]], path[1:], value)}


_CASES = [(i, p) for i, e in enumerate(_ENVELOPES) for p in _paths(e)]


@given(st.sampled_from(_CASES), _JSON)
def test_any_json_anywhere_in_a_handled_event_maps_or_says_why(case, value):
    """A signed body of another shape than Stripe's (a list or string where an object belongs, a bool for
    `created`) is a ValueError naming what is missing, the route's 422, or maps: before, `data: []`,
    `payment_method_details: "x"` or `last_payment_error: "x"` raised AttributeError (a 500, which Stripe
    retries for three days)."""
    i, path = case
    event = _replaced(_ENVELOPES[i], path, value)
    try:
        mapped = stripe.to_event("s", event) if isinstance(event, dict) else None
    except ValueError:
        return
    if mapped is not None:
        assert isinstance(mapped["ts"], int) and not isinstance(mapped["ts"], bool)
        msgspec.json.encode(mapped)


@pytest.mark.parametrize(
    "path, value",
    [
        (("data",), []),
        (("data", "object", "payment_method_details"), "x"),
        (("data", "object", "outcome"), "x"),
        (("data", "object", "billing_details"), ["x"]),
        (("created",), True),
    ],
)
def test_odd_shapes_of_a_failed_charge_are_value_errors_or_map(path, value):
    event = _replaced(_ENVELOPES[1], path, value)
    try:
        stripe.to_event("s", event)
    except ValueError:
        pass
