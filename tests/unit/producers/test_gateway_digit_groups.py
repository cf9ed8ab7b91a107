"""producers/gateway/events.py ``digit_groups`` / ``digit_cost`` / ``least_cost``: what a body counts as before
its events are read by the card check in Python. The C-speed count of ASCII bytes gives what a plain regex count
gives; bytes that are not all ASCII count their Unicode digits too, up to the cap; only the events the RE2
pre-scan flags are counted."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from livemetrics.validation import split_body
from producers.gateway.events import BYTES_PER_EVENT, DIGIT_GROUPS_PER_EVENT, digit_cost, digit_groups, least_cost
from producers.gateway.ingest import card_suspects

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


def _body(value: object) -> bytes:
    return json.dumps({"events": [{"type": "page_view", "x": value}]}, ensure_ascii=False).encode()


def test_a_body_counts_its_bytes_or_the_digit_groups_the_card_check_reads_whichever_is_more():
    assert least_cost(b'{"a": "x"}', 500) == 1
    assert least_cost(json.dumps({"a": "x" * (3 * BYTES_PER_EVENT)}).encode(), 500) == 3
    assert least_cost(_body("1 " * (7 * DIGIT_GROUPS_PER_EVENT + 90)), 500) == 7
    assert least_cost(_body("\u0661 " * (5 * DIGIT_GROUPS_PER_EVENT)), 500) == 5
    # past what one request may count, only "more than that" is known (the count stops there)
    assert least_cost(_body("\u0661 " * (50 * DIGIT_GROUPS_PER_EVENT)), 9) == 10


def test_the_digits_of_events_the_card_check_passes_unread_are_not_counted():
    # ~2,000 digit groups no card rule reads (the RE2 pre-scan passes them: no layout of a card number) ...
    unread = [{"type": "page_view", "n": [f"a{i}b" for i in range(1000)], "m": "x1y2z3" * 330}]
    body = json.dumps({"events": unread}).encode()
    raws = split_body(body)
    assert digit_groups(body, 10**9) > 1900 and card_suspects(raws) == []
    assert least_cost(body, 500) == max(1, len(body) // BYTES_PER_EVENT)
    # ... and the same number of groups in a layout the pre-scan flags
    read = [{"type": "page_view", "n": "1 " * 2000}]
    raws = split_body(json.dumps({"events": read}).encode())
    assert card_suspects(raws) == [0] and digit_cost(raws, [0], 500) == 20
