"""Which status notes an erase by phone deletes: those that mention the number, however spelt, and no
note whose digits only contain it (a longer number, or digits of several words run together)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickhouse.erase import phone_in_text

DIGITS = "15550100"
ABOUT_HIM = [
    "called +1 555 0100, no answer",
    "+1-555-0100",
    "(1) 555.0100: will retry",
    "15550100",
    "phone:1 555 0100.",
]
NOT_ABOUT_HIM = [
    "order 1555010012 refunded",  # a longer number
    "ref 915550100",
    "order 15 called 550100",  # digits of two words
    "called at 15:55, order 0100",
    "nothing here",
]


@pytest.mark.parametrize("note", ABOUT_HIM)
def test_a_note_with_the_number_is_found(note: str) -> None:
    assert re.search(phone_in_text(DIGITS), note)


@pytest.mark.parametrize("note", NOT_ABOUT_HIM)
def test_a_note_whose_digits_merely_contain_it_is_not(note: str) -> None:
    assert not re.search(phone_in_text(DIGITS), note)


@given(
    st.text("0123456789", min_size=4, max_size=15),
    st.lists(st.sampled_from(["", " ", "-", ".", "(", ")"]), min_size=15, max_size=15),
    st.sampled_from(["", "call ", "x+", "("]),
    st.sampled_from(["", " ok", ".", ")"]),
)
def test_any_spelling_is_found_and_a_digit_more_is_not(digits, seps, before, after) -> None:
    spelt = "".join(d + s for d, s in zip(digits, seps, strict=False)).rstrip(" -.(")
    pattern = phone_in_text(digits)
    assert "\\" not in pattern  # passed as a query parameter
    assert re.search(pattern, before + spelt + after)
    assert not re.search(pattern, before + "7" + spelt + after)
    assert not re.search(pattern, before + spelt.rstrip(")") + "7" + after)
