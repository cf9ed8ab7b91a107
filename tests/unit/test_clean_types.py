"""The clean path's body check stands in for msgspec's per-field patterns (``livemetrics.clean_types``):
a value it lets through must match the contract's pattern (and an `event_id` be the canonical UUID
string), whatever the spelling of the body around it."""

from __future__ import annotations

import json
import re
import typing
import uuid

import msgspec
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import clean_types as v
from livemetrics.contract import Checkout, Customer, EventIn, Item, Page, Payment

_opts = re2.Options()
_opts.encoding = re2.Options.Encoding.LATIN1
_opts.dot_nl = True
BAD = re2.compile(v._bad_values(), _opts)  # the body check's own alternatives, without the card scan's

ALPHABET = 'aAzZ09_.:-@ ()+"\\\n\t\r\x1c\x1f\x85\xa0\u2003é€\x7f{}/xX'
SEPARATORS = st.sampled_from([(", ", ": "), (",", ":"), (" , ", " : "), (",\n", ":\n\t")])


def _body(key: str, value, separators, ascii_only: bool) -> bytes:
    return json.dumps({"x": 1, key: value}, separators=separators, ensure_ascii=ascii_only).encode()


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(sorted(v._KEYS)), st.text(ALPHABET, max_size=45), SEPARATORS, st.booleans())
def test_a_value_the_body_check_lets_through_matches_the_pattern(key, text, separators, ascii_only):
    if BAD.search(_body(key, text, separators, ascii_only)) is None:
        assert all(re.search(p, text) for p in v._KEYS[key]), (key, text)


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(sorted(v._KEYS) + ["event_id"]),
    st.one_of(st.integers(), st.booleans(), st.lists(st.just("a"))),
    SEPARATORS,
)
def test_a_value_that_is_no_string_is_flagged(key, value, separators):
    assert BAD.search(_body(key, value, separators, True)) is not None


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.text("0123456789abcdefABCDEF-{}", max_size=40),
    ),
    SEPARATORS,
)
def test_an_event_id_passes_only_as_the_canonical_uuid_string(text, separators):
    if BAD.search(_body("event_id", text, separators, True)) is None:
        assert str(uuid.UUID(text)) == text


def test_what_storefronts_send_passes():
    for key, value in [
        ("category", "shoes"),
        ("offer_id", "summer-sale.2:b_1"),
        ("currency", "EUR"),
        ("method", "card_2"),
        ("email", "ada@example.com"),
        ("phone", "+44 (20) 7946-0958"),
        ("event_id", str(uuid.uuid4())),
    ]:
        assert BAD.search(_body(key, value, (", ", ": "), True)) is None, key


def test_every_field_with_a_pattern_is_checked_on_the_body():
    """Today all of them: a pattern ``_BAD_VALUE`` does not know would stay in the clean types instead."""
    with_pattern = {
        f.name
        for tp in (EventIn, Page, Checkout, Payment, Customer, Item)
        for f in msgspec.structs.fields(tp)
        if "pattern=" in repr(f.type)
    }
    assert with_pattern == set(v._KEYS) == {"category", "offer_id", "currency", "method", "email", "phone"}
    assert sorted(tp.__name__ for tp in _structs(v.CleanEventIn)) == [
        "CleanCheckout",
        "CleanCustomer",
        "CleanEventIn",
        "CleanItem",
        "CleanPage",
        "CleanPayment",
    ]
    assert not any("pattern=" in repr(f.type) for tp in _structs(v.CleanEventIn) for f in msgspec.structs.fields(tp))


def _structs(tp, found=None) -> set:
    """``tp`` and every struct type within its fields."""
    found = set() if found is None else found
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if tp not in found:
            found.add(tp)
            for f in msgspec.structs.fields(tp):
                _structs(f.type, found)
    for arg in typing.get_args(tp):
        _structs(arg, found)
    return found
