"""A card number split over array items (or an object's values) spelt in other decimal digits (fullwidth
`["４１１１", "１１１１", "１１１１", "１１１１"]` as Japanese and Chinese input methods type them, Arabic-Indic,
Devanagari, mixed with ASCII): ``card_numbers.item_digits`` reads any Unicode decimal digit as its ASCII one, as
the text rules do (``card_spellings.plain_digits``); the raw check reads such quoted items in a text that is
not all ASCII (``card_bytes._RUNS``); the RE2 pre-scan flags any non-ASCII digit already (``PLAIN_SPELLINGS``).
Each was accepted before (docs/ingest.md, Privacy)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import card_bytes as cb
from livemetrics.card_data import REDACTED, find_card_data, redact, scan_decoder
from tests.support import cards
from tests.support import factories as f

_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


def _details(value: object) -> dict:
    return f.payment_failed(payment_overrides={"details": {"gateway": "psp-x", "pan": value}})


GROUPS = ["4111", "1111", "1111", "1111", "12", "28"]
SPLIT = {
    "fullwidth": [g.translate(_FULLWIDTH) for g in GROUPS],
    "Arabic-Indic": [g.translate(_ARABIC_INDIC) for g in GROUPS],
    "Devanagari": [g.translate(_DEVANAGARI) for g in GROUPS],
    "mixed with ASCII": ["４１１１", "1111", 1111, "١١١١"],
    "mixed in an item": ["4１11", "1111", "1111", "1111"],
}


@pytest.mark.parametrize("case", list(SPLIT))
@pytest.mark.parametrize("container", ["array", "object"])
def test_a_card_split_over_items_in_other_digits_is_refused_and_never_leaves(case, container):
    """Seen failing on 969c850 (the commit before): every case was accepted (item_digits read ASCII only)."""
    items = SPLIT[case]
    value: object = items if container == "array" else {f"p{i}": v for i, v in enumerate(items)}
    ev = _details(value)
    raw = json.dumps(ev, ensure_ascii=False).encode()
    assert find_card_data(scan_decoder.decode(raw)) is not None
    assert cb.card_in_raw_text(cb.event_text(raw))
    cards.assert_refused_everywhere(ev, json.dumps(value, ensure_ascii=False))
    out = redact(scan_decoder.decode(raw))["payment"]["details"]["pan"]
    assert list(out.values() if isinstance(out, dict) else out) == [REDACTED] * len(items)


ALIKE = {
    "fullwidth years": ["２０１９", "２０２０", "２０２１", "２０２２"],
    "a fifth four": ["４１１１", "１１１１", "１１１１", "１１１１", "４１１１"],
    "superscripts (no decimal digits)": ["⁴¹¹¹", "¹¹¹¹", "¹¹¹¹", "¹¹¹¹"],
    "fullwidth, wrong Luhn": ["４１１１", "１１１１", "１１１１", "１１１２"],
    "fullwidth ids of 7 digits": ["４１１１１１１", "１１１１１１１", "１１"],
}


@pytest.mark.parametrize("case", list(ALIKE))
def test_items_of_other_numbers_in_other_digits_are_accepted(case):
    raw = json.dumps(_details(ALIKE[case]), ensure_ascii=False).encode()
    assert find_card_data(scan_decoder.decode(raw)) is None
    assert not cb.card_in_raw_text(cb.event_text(raw))


_digit_map = st.sampled_from([None, _FULLWIDTH, _ARABIC_INDIC, _DEVANAGARI])


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(["4111", "1111", "5555", "4444", "3782", "822463", "10005", "12", "0412"]),
                st.integers(0, 10**7).map(str),
                st.sampled_from(["x", "1.5", "４x", "-1"]),
            ),
            _digit_map,
            st.booleans(),
        ),
        max_size=12,
    ),
    st.booleans(),
    st.sampled_from([(",", ":"), (", ", ": ")]),
)
def test_the_byte_scans_flag_every_run_in_other_digits_the_walk_refuses(items, as_object, spacing):
    """Whatever the walk refuses in arrays or objects of items in any mix of digits, the raw check and the
    pre-scan flag (a superset)."""
    values: list[object] = [
        int(s) if as_int and s.isdigit() and not s.startswith("0") else (s.translate(m) if m else s)
        for s, m, as_int in items
    ]
    container: object = {f"k{i}": v for i, v in enumerate(values)} if as_object else values
    raw = json.dumps({"details": container}, separators=spacing, ensure_ascii=False).encode()
    if find_card_data(scan_decoder.decode(raw)) is not None:
        assert cb.events_to_card_check([raw]) == [0] and cb.might_hold_card_data(raw), raw
        assert cb.card_in_raw_text(cb.event_text(raw)), raw
