"""Every rejection rule of the contract, one case each, with the message asserted."""

from __future__ import annotations

import json

import pytest

from livemetrics.contract import MAX_BATCH, EventIn
from livemetrics.validation import BodyError, Rejection, clean_batch, parse_event, split_body
from tests.support import factories as f


def rejected(ev: dict) -> Rejection:
    r = parse_event(json.dumps(ev).encode(), 3)
    assert isinstance(r, Rejection), r
    assert r.index == 3
    return r


def test_every_event_type_is_accepted():
    for ev in (
        f.page_view(),
        f.heartbeat(),
        f.checkout_started(),
        f.payment(),
        f.payment_succeeded(),
        f.payment_failed(),
    ):
        assert isinstance(parse_event(json.dumps(ev).encode(), 0), EventIn), ev["type"]


def test_unknown_type():
    assert rejected(f.page_view(type="x")).error == "unknown event type 'x' - at `$.type`"


def test_unknown_page_type():
    assert rejected(f.page_view("basement")).error == "unknown page type 'basement' - at `$.page.type`"


def test_missing_field():
    ev = f.page_view()
    del ev["session_id"]
    assert rejected(ev).error == "Object missing required field `session_id` - at `$`"


def test_missing_page_on_page_view():
    ev = f.page_view()
    del ev["page"]
    assert "`page`" in rejected(ev).error and "$.page" in rejected(ev).error


def test_missing_nested_field():
    ev = f.checkout_started()
    del ev["checkout"]["currency"]
    assert rejected(ev).error == "Object missing required field `currency` - at `$.checkout`"


def test_wrong_type():
    assert rejected(f.page_view(session_id=12345678)).error == "Expected `str`, got `int` - at `$.session_id`"


def test_unknown_field():
    assert rejected(f.page_view(colour="red")).error == "Object contains unknown field `colour` - at `$`"


def test_an_event_that_is_not_an_object_names_the_event_itself():
    r = parse_event(b"null", 2)
    assert isinstance(r, Rejection) and r.error == "Expected `object`, got `null` - at `$`"


def test_category_page_needs_category():
    assert rejected(f.page_view("category")).error == "category pages need `page.category` - at `$.page.category`"


def test_offer_page_needs_offer_id():
    assert rejected(f.page_view("offer")).error == "offer pages need `page.offer_id` - at `$.page.offer_id`"


def test_payment_failed_needs_error_code():
    ev = f.payment_failed()
    del ev["payment"]["error_code"]
    assert rejected(ev).error == "payment_failed needs `payment.error_code` - at `$.payment.error_code`"


def test_bad_currency():
    ev = f.checkout_started()
    ev["checkout"]["currency"] = "euro"
    assert "$.checkout.currency" in rejected(ev).error


def test_naive_timestamp_is_accepted_by_schema_but_names_ts_later():
    # A time without zone passes msgspec; the gateway's epoch_ms names `$.ts` (see ingest tests).
    assert isinstance(parse_event(json.dumps(f.page_view(ts="2026-01-01T10:00:00")).encode(), 0), EventIn)


def test_epoch_seconds_are_not_milliseconds():
    from livemetrics.contract import ContractError, epoch_ms

    with pytest.raises(ContractError, match=r"\$\.ts"):
        epoch_ms(1_700_000_000)


def test_pii_on_page_view():
    r = rejected(f.page_view(customer=f.customer()))
    assert (r.reason, r.error) == ("pii", "personal data is not accepted on page_view events - at `$.customer`")


def test_pii_on_heartbeat():
    assert rejected(f.heartbeat(customer={"email": "a@b.c"})).reason == "pii"


@pytest.mark.parametrize(
    "number", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005"]
)
def test_card_number_anywhere(number):
    ev = f.payment_failed(payment_overrides={"details": {"note": f"card {number} declined"}})
    r = rejected(ev)
    assert r.reason == "card_data"
    assert (
        r.error
        == "card data is never accepted: value at `$.payment.details.note` looks like a card number or security code"
    )
    assert number not in json.dumps(r.raw) and number.replace(" ", "").replace("-", "") not in json.dumps(r.raw)


def test_card_number_as_json_number():
    r = rejected(f.payment_failed(payment_overrides={"details": {"pan": 4111111111111111}}))
    assert r.reason == "card_data" and "4111111111111111" not in json.dumps(r.raw)


def test_card_number_hidden_in_unicode_escapes():
    raw = (
        json.dumps(f.page_view(page={"type": "home", "path": "/x"}))
        .replace('"/x"', '"\\u0034111111111111111"')
        .encode()
    )
    r = parse_event(raw, 0)
    assert isinstance(r, Rejection) and r.reason == "card_data"


def test_digits_failing_luhn_are_not_card_data():
    ev = f.payment_failed(payment_overrides={"order_id": "4111111111111112"})
    assert isinstance(parse_event(json.dumps(ev).encode(), 0), EventIn)


@pytest.mark.parametrize("field", ["cvc", "CVV", "cvv2", "security_code", "card_verification_value"])
def test_card_security_code_field(field):
    r = rejected(f.payment_failed(payment_overrides={"details": {field: "123"}}))
    assert r.reason == "card_data"
    assert f"`$.payment.details.{field}`" in r.error
    assert r.raw["payment"]["details"][field] == "[redacted]"


def test_oversize_event():
    ev = f.payment_failed(payment_overrides={"details": {"blob": "x" * 33_000}})
    r = rejected(ev)
    assert r.reason == "oversize" and "over the limit of 32768" in r.error


def test_batch_over_500_is_413():
    body = json.dumps({"events": [f.heartbeat() for _ in range(MAX_BATCH + 1)]}).encode()
    with pytest.raises(BodyError) as exc:
        split_body(body)
    assert exc.value.status == 413 and "501 events is over the limit of 500" in str(exc.value)


def test_malformed_and_wrong_shapes():
    for body, words in (
        (b"", "empty body"),
        (b"[{}]", "JSON array"),
        (b"nope", "malformed JSON"),
        (b'{"events": []}', "`events` is empty"),
        (b'{"events": 3}', "malformed JSON"),
    ):
        with pytest.raises(BodyError, match=words):
            split_body(body)


def _reference_check_rules(ev) -> None:
    """``check_rules`` as first written, rule by rule (the gateway's version reads each field once)."""
    from livemetrics.contract import PII_TYPES, ContractError

    t = ev.type
    if t == "page_view" and ev.page is None:
        raise ContractError("Object missing required field `page` (page_view) - at `$.page`")
    if ev.page is not None:
        if ev.page.type == "category" and not ev.page.category:
            raise ContractError("category pages need `page.category` - at `$.page.category`")
        if ev.page.type == "offer" and not ev.page.offer_id:
            raise ContractError("offer pages need `page.offer_id` - at `$.page.offer_id`")
    if t == "checkout_started" and ev.checkout is None:
        raise ContractError("Object missing required field `checkout` (checkout_started) - at `$.checkout`")
    if t.startswith("payment_") and ev.payment is None:
        raise ContractError(f"Object missing required field `payment` ({t}) - at `$.payment`")
    if t == "payment_failed" and not ev.payment.error_code:
        raise ContractError("payment_failed needs `payment.error_code` - at `$.payment.error_code`")
    if ev.customer is not None and t not in PII_TYPES:
        raise ContractError(f"personal data is not accepted on {t} events - at `$.customer`")
    if t not in ("checkout_started",) and ev.checkout is not None:
        raise ContractError(f"`checkout` is not accepted on {t} events - at `$.checkout`")
    if not t.startswith("payment_") and ev.payment is not None:
        raise ContractError(f"`payment` is not accepted on {t} events - at `$.payment`")


def test_check_rules_names_the_same_first_broken_rule_as_the_reference_for_every_combination():
    import itertools
    import uuid
    from decimal import Decimal

    from livemetrics.contract import (
        EVENT_TYPES,
        Checkout,
        ContractError,
        Customer,
        EventIn,
        Item,
        Page,
        Payment,
        check_rules,
    )

    pages = [
        None,
        Page(type="home"),
        Page(type="category"),
        Page(type="category", category="lamps"),
        Page(type="offer"),
        Page(type="offer", offer_id="o-1"),
    ]
    one = Decimal("1.00")  # as the decoder makes it (valid amounts: the money rules are tested on their own)
    checkouts = [None, Checkout(items=[Item(sku="s", name="n", qty=1, unit_price=one)], total=one, currency="EUR")]
    payments = [
        None,
        Payment(method="card", amount=one, currency="EUR", order_id="o"),
        Payment(method="card", amount=one, currency="EUR", order_id="o", error_code="declined"),
    ]
    customers = [None, Customer(email="a@b.c")]

    def outcome(check, ev):
        try:
            check(ev)
        except ContractError as exc:
            return str(exc)
        return None

    seen = set()
    for t, page, checkout, payment, customer in itertools.product(EVENT_TYPES, pages, checkouts, payments, customers):
        ev = EventIn(
            event_id=uuid.uuid4(),
            type=t,
            session_id="session-1",
            ts=1795503867234,
            page=page,
            checkout=checkout,
            payment=payment,
            customer=customer,
        )
        expected = outcome(_reference_check_rules, ev)
        assert outcome(check_rules, ev) == expected, (t, page, checkout, payment, customer)
        seen.add(expected)
    assert len(seen) > 8  # every rule (and passing) was reached


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [' + b"[" * 5_000 + b"]" * 5_000 + b"]}",
        b'{"a": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        # a lone surrogate escape first sends the body down the second decode, which meets the depth too
        b'{"events": [{"t": "\\ud800"}, ' + b"[" * 5_000 + b"]" * 5_000 + b"]}",
    ],
    ids=["batch", "event", "after-a-lone-surrogate"],
)
def test_a_body_nested_past_the_decoders_depth_is_a_body_error_for_every_caller(body):
    # msgspec raises RecursionError, not DecodeError, past its depth limit; the gateway caught it, the other
    # callers of split_body (the hypothesis corpus test in the loaded CI) did not.
    with pytest.raises(BodyError, match="nested too deeply|malformed JSON"):
        split_body(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"vents": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",  # an unknown field's value is skipped: past the depth
        b'{"events": [{"x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}]}",
    ],
    ids=["unknown-field", "inside-an-event"],
)
def test_a_body_nested_past_the_decoders_depth_is_a_body_error_from_the_clean_path_too(body):
    # The clean path's one decode skipped the deep value and raised RecursionError out of the gateway's
    # ``parse_body`` and ``ingest`` (found by the mutated-bodies property test); only the HTTP endpoint caught
    # it. The clean path now leaves such a body to the exact way, which names what is wrong.
    assert clean_batch(body) is None
    with pytest.raises(BodyError, match="nested too deeply"):
        split_body(body)
