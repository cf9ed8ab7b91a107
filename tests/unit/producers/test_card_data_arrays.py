"""A card number split over an array's items (`["4111", "1111", "1111", "1111"]`, `[4111, 1111, 1111, 1111]`,
with its expiry after it): an array has an order, so adjacent items of 1-6 digits are read as a run joined by
a wide separator (``card_numbers.card_item_runs``), by the walk and by the byte scans. Each was accepted and
stored; each is now refused by the gateway's functions (the byte pre-scan, the clean path of a batch, the
walk), redacted in the dead-letter copy, and the batch's other events still go through. Arrays of short
numbers, years, amounts and ids are refused only when four items in a row are a card as printed
(docs/ingest.md, Privacy: the figures)."""

from __future__ import annotations

import json
import random
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.card_bytes import events_to_card_check, might_hold_card_data
from livemetrics.card_data import REDACTED, find_card_data, redact, scan_decoder
from livemetrics.settings import Settings
from livemetrics.validation import Rejection, clean_batch, parse_event
from producers.gateway.ingest import ClientInfo, dead_letter, ingest
from tests.support import cards
from tests.support import factories as f
from tests.support import free_text_numbers as corpus

SETTINGS = Settings(topic_prefix="arrays.")
CLIENT = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME)


def _details(items: list, before: list | None = None) -> dict:
    return f.payment_failed(payment_overrides={"details": {"gateway": "psp-x", "pan": [*(before or []), *items]}})


def _now() -> int:
    return time.time_ns() // 1_000_000


SPLIT = {
    "digit strings": ["4111", "1111", "1111", "1111"],
    "integers": [4111, 1111, 1111, 1111],
    "the expiry after it": ["4111", "1111", "1111", "1111", "12", "28"],
    "integers, the expiry after it": [4111, 1111, 1111, 1111, 12, 2028],
    "Amex": ["3782", "822463", "10005"],
    "Visa 19": ["4111", "1111", "1111", "1111", "110"],
    "strings and integers": ["5555", 5555, "5555", 4444],
    "after other numbers": ["2", "4111", "1111", "1111", "1111", "12", "28"],
}


@pytest.mark.parametrize("case", list(SPLIT))
@pytest.mark.parametrize("spacing", [(",", ":"), (", ", ": "), (" ,\n ", ":")])
def test_a_card_split_over_array_items_is_rejected_and_never_leaves(case, spacing):
    """Seen failing before the change (on 7246561): each was accepted and stored (the walk read each item
    alone; quoted items had no digit run for the pre-scan)."""
    items = SPLIT[case]
    ev = _details(items)
    raw = json.dumps(ev, separators=spacing).encode()
    assert find_card_data(scan_decoder.decode(raw)) == "a run of items at `$.payment.details.pan[0..%d]`" % (
        len(items) - 1
    )
    good = msgspec.json.encode(f.page_view())
    assert events_to_card_check([good, raw]) == [1] and might_hold_card_data(raw)
    body = b'{"events": [' + raw + b"," + good + b"]}"
    assert clean_batch(body) is None  # the clean path's one scan sends it the exact way
    rejected = parse_event(raw, 0)
    assert isinstance(rejected, Rejection) and rejected.reason == "card_data", rejected
    out = ingest(body, CLIENT, SETTINGS, received_at=_now())
    assert len(out.records) == 1 and [r.reason for r in out.rejected] == ["card_data"]
    letter = msgspec.json.decode(dead_letter(out.rejected[0], CLIENT, _now()))
    assert letter["event"]["payment"]["details"]["pan"] == [REDACTED] * len(items)


@settings(max_examples=300, deadline=None)
@given(
    cards.card_numbers(),
    st.sampled_from(["str", "int", "mixed"]),
    st.lists(st.sampled_from(["declined", None, 3.5, -12, 1234567, {"a": 1}, [1, 2]]), max_size=2),
    st.lists(st.sampled_from(["12", "28", 12, 2028, "123", "EUR", None]), max_size=3),
)
def test_every_card_as_printed_over_array_items_is_refused_everywhere(digits, kind, before, after):
    """Any issuer's card number, in its printed groups as strings, ints (when no group starts with 0) or
    both, after items that are no digit group and with its expiry or code (or anything) after it."""
    groups = cards.grouped(digits, " ").split(" ")
    if kind == "int" and not any(g.startswith("0") for g in groups):
        items: list = [int(g) for g in groups]
    elif kind == "mixed":
        items = [int(g) if i % 2 and not g.startswith("0") else g for i, g in enumerate(groups)]
    else:
        items = groups
    while after and isinstance(after[0], int | str) and len(str(after[0])) == 4:
        after = after[1:]  # a fifth group of four: a longer run of fours, as a list of four-digit numbers
    ev = _details(items + after, before)
    cards.assert_refused_everywhere(ev, json.dumps(items))
    assert not any(g in json.dumps(redact(ev)["payment"]["details"]["pan"]) for g in groups if len(g) >= 4)


ALIKE = {
    "small numbers": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
    "years": [2019, 2020, 2021, 2022, 2023],
    "year strings": ["2019", "2020", "2021", "2022"],
    "amounts": ["19.99", "4111.11", "1111.00", "1111.11", "1111.11"],
    "amounts in cents": [4111, 1111, 1111, 1111, 4111],  # a run of five fours: no printed layout
    "ids of 7 digits and more": [4111111, 1111111, 11111111],
    "negative numbers": [-4111, -1111, -1111, -1111],
    "floats": [4111.0, 1111.0, 1111.0, 1111.0],
    "nested arrays": [[4111, 1111], [1111, 1111]],
    "text between": ["4111", "1111", "x", "1111", "1111"],
    "a leading zero lost in an int": [4111, 111, 1111, 1111],
}


@pytest.mark.parametrize("case", list(ALIKE))
def test_arrays_of_other_numbers_are_accepted(case):
    raw = msgspec.json.encode(_details(ALIKE[case]))
    assert find_card_data(scan_decoder.decode(raw)) is None
    out = ingest(b'{"events": [' + raw + b"]}", CLIENT, SETTINGS, received_at=_now())
    assert len(out.records) == 1 and not out.rejected, out.rejected


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 99999),
            st.sampled_from([4111, 1111, 5555, 4444, 3782, 822463, 10005, 12, 28]),
            st.sampled_from(["4111", "1111", "5555", "4444", "0412", "12", "x", "1.5"]),
            st.sampled_from([None, -5, 2.5, 12345678]),
        ),
        max_size=14,
    ),
    st.sampled_from([(",", ":"), (", ", ": "), (" , ", ":")]),
)
def test_the_byte_scans_flag_every_array_the_walk_refuses(items, spacing):
    """The raw check reads an array's items as the walk does (a superset): whatever the walk refuses, the
    pre-scan and the raw check flag."""
    raw = json.dumps({"details": {"l": items}}, separators=spacing).encode()
    if find_card_data(scan_decoder.decode(raw)) is not None:
        assert events_to_card_check([raw]) == [0] and might_hold_card_data(raw), raw


def test_arrays_of_numbers_in_provider_details_are_rarely_refused():
    """``corpus.DETAILS_ARRAYS`` (small numbers, years, amounts, ids, four-digit codes as strings, mixed):
    refused only when four adjacent items of four digits (or 4-6-4/5) pass the issuer table and Luhn, as a
    card written so would (100,000 of each: docs/ingest.md)."""
    refused = corpus.details_array_rates(2000, lambda items: find_card_data(items) is not None)
    assert refused["small numbers"] == refused["amounts"] == 0, refused
    assert all(v <= 2000 * 0.01 for v in refused.values()), refused


def test_a_run_of_items_is_read_in_linear_time():
    """A 100,000-item array of fours (a hostile one) is read in one pass, as a text run is."""
    rng = random.Random(3)
    items = [f"{rng.randint(1000, 9999)}" for _ in range(100_000)]
    t = time.process_time()
    find_card_data({"l": items})
    assert time.process_time() - t < 2.0
