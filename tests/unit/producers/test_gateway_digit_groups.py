"""producers/gateway/events.py ``digit_groups`` / ``least_cost``: what a body counts as before it is split. The
C-speed count of ASCII bodies gives what a plain regex count gives; a body that is not all ASCII counts its
Unicode digits too, up to the cap."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from producers.gateway.events import BYTES_PER_EVENT, DIGIT_GROUPS_PER_EVENT, digit_groups, least_cost

_GROUPS = re.compile(r"\d+")
_ALPHABET = st.sampled_from(list('0123456789 ,.-ab"{}[]:\n') + ["\u0661", "\uff11", "\u00e9", "\U0001d7ce"])


@given(st.binary(max_size=300))
def test_ascii_bytes_count_as_a_plain_count_of_ascii_digit_runs(raw):
    body = bytes(b & 0x7F for b in raw)
    assert digit_groups(body, cap=10**9) == len(re.findall(rb"[0-9]+", body))


@given(st.text(_ALPHABET, max_size=300))
def test_any_text_counts_its_digit_runs_unicode_ones_too(text):
    assert digit_groups(text.encode(), cap=10**9) == len(_GROUPS.findall(text))


@given(st.text(_ALPHABET, max_size=300), st.integers(1, 50))
def test_a_body_not_all_ascii_is_counted_only_up_to_the_cap(text, cap):
    body = ("\u00e9" + text).encode()
    assert digit_groups(body, cap) == min(cap, len(_GROUPS.findall(text)))


def test_a_body_counts_its_bytes_or_its_digit_groups_whichever_is_more():
    assert least_cost(b'{"a": "x"}', 500) == 1
    assert least_cost(b"x" * (3 * BYTES_PER_EVENT), 500) == 3
    groups = b"1 " * (7 * DIGIT_GROUPS_PER_EVENT + 99)
    assert least_cost(groups, 500) == 7
    arabic = ("\u0661 " * (5 * DIGIT_GROUPS_PER_EVENT)).encode()
    assert least_cost(arabic, 500) == 5
    # past what one request may count, only "more than that" is known (the count stops there)
    assert least_cost(("\u0661 " * (50 * DIGIT_GROUPS_PER_EVENT)).encode(), 9) == 10
