"""A card number split over an object's adjacent values (`{"cc1": "4111", "cc2": "1111", "cc3": "1111", "cc4":
"1111"}`, or ints): an object's values are read in the order its keys are written, as an array's items are
(``card_numbers.card_item_runs``), by the walk (``card_data.find_card_data``, ``redact``), the raw check
(``card_bytes._OBJECT_RUN``) and the RE2 pre-scan (``card_bytes._OBJECT_VALUES``). Each was accepted and stored
before (docs/ingest.md, Privacy)."""

from __future__ import annotations

import json
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import card_bytes as cb
from livemetrics.card_data import REDACTED, find_card_data, redact, scan_decoder
from tests.support import cards
from tests.support import factories as f
from tests.support import free_text_numbers as corpus


def _details(values: dict) -> dict:
    return f.payment_failed(payment_overrides={"details": {"gateway": "psp-x", **values}})


SPLIT = {
    "digit strings": {"cc1": "4111", "cc2": "1111", "cc3": "1111", "cc4": "1111"},
    "integers": {"a": 4111, "b": 1111, "c": 1111, "d": 1111},
    "the expiry after it": {"p1": "4111", "p2": "1111", "p3": "1111", "p4": "1111", "mm": "12", "yy": "28"},
    "Amex": {"a": "3782", "b": "822463", "c": "10005"},
    "after other numbers": {"attempt": 2, "a": "4111", "b": "1111", "c": "1111", "d": "1111"},
    "keys with escapes": {'a"1': "4111", "a\\": "1111", "\u00e9": "1111", "": "1111"},
}


@pytest.mark.parametrize("case", list(SPLIT))
@pytest.mark.parametrize("spacing", [(",", ":"), (", ", ": "), (" ,\n ", " : ")])
def test_a_card_split_over_an_objects_values_is_refused_and_never_leaves(case, spacing):
    """Seen failing on 3aaa1df (the commit before): every case was accepted (the walk read each value alone;
    the pre-scan had no digit run in `"cc1":"4111","cc2":...`)."""
    values = SPLIT[case]
    ev = _details(values)
    raw = json.dumps(ev, separators=spacing, ensure_ascii=False).encode()
    keys = list(values)
    assert find_card_data(scan_decoder.decode(raw)) == f"a run of values at `$.payment.details.{keys[0]}..{keys[-1]}`"
    assert cb.card_in_raw_text(cb.event_text(raw))
    out = redact(scan_decoder.decode(raw))["payment"]["details"]
    assert [out[k] for k in keys] == [REDACTED] * len(keys) and out["gateway"] == "psp-x"
    cards.assert_refused_everywhere(ev, json.dumps(values))


ALIKE = {
    "counts": {"attempts": 3, "step": 2, "retries": 1, "code": 51},
    "years": {"from": 2019, "to": 2020, "issued": 2021, "renewed": 2022},
    "a fifth four after it": {"a": 4111, "b": 1111, "c": 1111, "d": 1111, "e": 4111},
    "text between": {"a": "4111", "b": "1111", "x": "y", "c": "1111", "d": "1111"},
    "nested objects": {"a": {"x": 4111, "y": 1111}, "b": {"x": 1111, "y": 1111}},
    "negative numbers": {"a": -4111, "b": -1111, "c": -1111, "d": -1111},
    "floats": {"a": 4111.0, "b": 1111.0, "c": 1111.0, "d": 1111.0},
}


@pytest.mark.parametrize("case", list(ALIKE))
def test_objects_of_other_numbers_are_accepted(case):
    raw = json.dumps(_details(ALIKE[case])).encode()
    assert find_card_data(scan_decoder.decode(raw)) is None
    assert not cb.card_in_raw_text(cb.event_text(raw))


@settings(max_examples=300, deadline=None)
@given(
    cards.card_numbers(),
    st.sampled_from(["str", "int", "mixed"]),
    st.lists(st.sampled_from(["declined", None, 3.5, -12, 1234567, {"a": 1}, [1, 2]]), max_size=2),
    st.lists(st.sampled_from(["12", "28", 12, 2028, "123", "EUR", None]), max_size=3),
)
def test_every_card_as_printed_over_an_objects_values_is_refused_everywhere(digits, kind, before, after):
    """Any issuer's card number in its printed groups as an object's values (strings, ints when no group starts
    with 0, or both), after values that are no digit group and with anything after it."""
    groups = cards.grouped(digits, " ").split(" ")
    if kind == "int" and not any(g.startswith("0") for g in groups):
        items: list = [int(g) for g in groups]
    elif kind == "mixed":
        items = [int(g) if i % 2 and not g.startswith("0") else g for i, g in enumerate(groups)]
    else:
        items = groups
    while after and isinstance(after[0], int | str) and len(str(after[0])) == 4:
        after = after[1:]  # a fifth group of four: a longer run of fours
    values = {f"v{i}": v for i, v in enumerate([*before, *items, *after])}
    ev = _details(values)
    cards.assert_refused_everywhere(ev, json.dumps(items))
    assert not any(g in json.dumps(redact(ev)["payment"]["details"]) for g in groups if len(g) >= 4)


_value = st.one_of(
    st.integers(0, 99999),
    st.sampled_from([4111, 1111, 5555, 4444, 3782, 822463, 10005, 12, 28]),
    st.sampled_from(["4111", "1111", "5555", "4444", "0412", "12", "x", "1.5", ",1111", "{", '"'] * 2),
    st.sampled_from([None, -5, 2.5, 12345678, [4111, "1111"], {"k": "1111"}]),
)
_key = st.sampled_from(["a", "b", "cc", "a,b", '"', "\\", ":", "{", "1111", ", 1111", "", ":1,", ": 12}", "x,"])


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.tuples(_key, _value), max_size=14).map(dict),
    st.sampled_from([(",", ":"), (", ", ": "), (" , ", " :")]),
    st.booleans(),
)
def test_the_byte_scans_flag_every_object_the_walk_refuses(values, spacing, in_array):
    """The raw check and the pre-scan read an object's values as the walk does (a superset): whatever the walk
    refuses, both flag."""
    raw = json.dumps({"details": [values] if in_array else values}, separators=spacing).encode()
    if find_card_data(scan_decoder.decode(raw)) is not None:
        assert cb.events_to_card_check([raw]) == [0] and cb.might_hold_card_data(raw), raw
        assert cb.card_in_raw_text(cb.event_text(raw)), raw


def test_a_pair_read_from_inside_a_string_does_not_hide_the_object_run_after_it():
    """A string ending in a comma (`"x,"`) before a key that starts with a colon and digits (`":1,"`): the raw
    check's object pattern matched a "pair" from the comma inside the string (its key the gap `", "` between
    the two strings, its value the `1` inside the next), and that match swallowed the real pair starting at the
    gap's comma (`":1,": 4111`), so the run `4111, 1111, 1111, 1111` the walk refuses was never read. Seen
    failing on 9ef9df2 (might_hold_card_data False: accepted and stored)."""
    values = {"a": "x,", ":1,": 4111, "k2": 1111, "k3": 1111, "k4": 1111}
    for spacing in ((",", ":"), (", ", ": ")):
        raw = json.dumps(_details(values), separators=spacing).encode()
        assert find_card_data(scan_decoder.decode(raw)) == "a run of values at `$.payment.details.:1,..k4`"
        assert cb.card_in_raw_text(cb.event_text(raw)), raw
    cards.assert_refused_everywhere(_details(values), "4111")


def test_objects_of_numbers_in_provider_details_are_rarely_refused():
    """``corpus.DETAILS_ARRAYS``'s values as an object's (keys `k0`, `k1`...): refused as often as the arrays,
    only when four adjacent values of four digits (or 4-6-4/5) pass the issuer table and Luhn."""
    as_object = corpus.details_array_rates(
        2000, lambda items: find_card_data({f"k{i}": v for i, v in enumerate(items)}) is not None
    )
    as_array = corpus.details_array_rates(2000, lambda items: find_card_data(items) is not None)
    assert as_object == as_array
    assert as_object["small numbers"] == as_object["amounts"] == 0, as_object


def test_an_objects_values_are_read_in_linear_time():
    """A 50,000-key object of fours (a hostile one) is read in one pass by the walk and the raw check."""
    rng = random.Random(3)
    values = {f"k{i}": f"{rng.randint(1000, 9999)}" for i in range(50_000)}
    text = json.dumps(values)
    t = time.process_time()
    find_card_data(values)
    cb.card_in_raw_text(text)
    assert time.process_time() - t < 2.0
