"""The raw check (``card_bytes.card_in_raw_text``, after the RE2 pre-scan: ``might_hold_card_data``) is a superset
of the walk (``card_data.find_card_data``): every event the walk finds card data in, it flags. Events of the
hostile pieces its shortcuts are about: strings holding commas, colons, quotes and digit groups (read by the text
rules, never as items: ``card_bytes.outside_strings``), arrays and objects of a card's groups after and before
such strings and other values (the runs the text rules read already are not read again as items:
``card_numbers.card_in_text``'s ``read``)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import card_bytes as cb
from livemetrics.card_data import find_card_data, scan_decoder
from tests.support import cards

_PIECES = [
    "1111", "4111", "12", "28", "3782", "822463", "10005", "5555", "4444", "0",
    ",", ", ", ":", ": ", " ", "-", ".", "/", "\n", "x", '"', "\\", "[", "]", "{", "}", "４１１１",
]  # fmt: skip
_text = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)
_int = st.one_of(
    st.sampled_from([4111, 1111, 12, 28, 3782, 822463, 10005, 5555, 4444, 2028, 0, 7]), st.integers(0, 10**7)
)


@st.composite
def _card_groups(draw) -> list:
    """A card number's printed groups as items or values: strings, ints (when no group starts with 0), or both."""
    groups = cards.grouped(draw(cards.card_numbers()), " ").split(" ")
    kind = draw(st.sampled_from(["str", "int", "mixed"]))
    if kind == "str" or any(g.startswith("0") for g in groups):
        return groups
    return [int(g) if kind == "int" or i % 2 else g for i, g in enumerate(groups)]


_scalar = st.one_of(_text, _int, st.sampled_from([None, True, -12, 2.5, 1111.0]))


def _container(kids):
    """Lists and objects whose items are kids, with a card's groups spliced in among them now and then."""
    items = st.tuples(st.lists(kids, max_size=4), st.one_of(st.just([]), _card_groups()), st.lists(kids, max_size=3))
    as_list = items.map(lambda t: [*t[0], *t[1], *t[2]])
    keys = st.lists(st.one_of(_text, st.sampled_from(["a", "k", ":1,", "x,"])), min_size=11, max_size=11)
    # (a key drawn twice keeps its last value, as JSON's decoders do)
    return as_list | st.tuples(as_list, keys).map(lambda t: dict(zip(t[1], t[0], strict=False)))


_value = st.recursive(_scalar, _container, max_leaves=16)


@settings(max_examples=1500, deadline=None)
@given(_value, st.sampled_from([(",", ":"), (", ", ": "), (" , ", " :"), (",\n", ":")]))
def test_the_raw_check_flags_every_event_the_walk_finds_card_data_in(value, spacing):
    raw = json.dumps({"details": value}, separators=spacing, ensure_ascii=False).encode()
    if find_card_data(scan_decoder.decode(raw)) is None:
        return
    assert cb.might_hold_card_data(raw), raw
    assert cb.card_in_raw_text(cb.event_text(raw)), raw  # no `\u` escape here: the raw check alone decides
