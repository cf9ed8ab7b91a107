"""The raw check's fast paths (livemetrics/card_bytes.py, card_numbers.py) give what their plain versions give:
number tokens skipped by a look-ahead when they cannot have a card's value, adjacent array items found as one
run, windows' Luhn sums from prefix sums, issuer lengths from one 4-digit lookup."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import card_bytes as cb
from livemetrics import card_numbers as cn
from tests.support import cards

_PLAIN_TOKEN = re.compile(r"[:,\[][\t\n\r ]*(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+\-]?[0-9]+)?)(?![0-9A-Za-z_.+\-])")
_PLAIN_QUOTED = re.compile(r'"(%s)"' % cn.NUMBER_SPELLING.pattern)
_PLAIN_ITEM = re.compile(r'[\[,][\t\n\r ]*(?:"([0-9]{1,6})"|([0-9]{1,6}))[\t\n\r ]*(?=[,\]])')


def numbers_hold_card(text: str, tokens: re.Pattern[str], quoted: re.Pattern[str]) -> bool:
    """card_bytes.card_in_raw_text's number part with these token regexes: the plain ones (the check before
    the look-aheads), each number read as a number, or the module's own."""
    for m in tokens.finditer(text):
        token = m.group(1)
        if text.endswith(cb._TS_BEFORE, 0, m.start(1)):
            continue
        if cn.card_in_number(token):
            return True
        if ("." in token or "e" in token or "E" in token) and cn.card_in_number(repr(float(token))):
            return True
    return any(cn.card_in_number(m.group(1)) for m in quoted.finditer(text))


def plain_array_items(text: str) -> bool:
    """Adjacent item matches, one by one (the check before runs were matched whole), each only when an even
    number of quotes stands before it (outside a string, as ``cb.outside_strings`` reads them)."""
    groups: list[str] = []
    end = -1
    for m in _PLAIN_ITEM.finditer(text):
        if text.count('"', 0, m.start()) % 2:
            continue
        if m.start() != end:
            if sum(map(len, groups)) >= 13 and cn.card_in_groups(groups):
                return True
            groups = []
        groups.append(m.group(1) or m.group(2))
        end = m.end()
    return sum(map(len, groups)) >= 13 and cn.card_in_groups(groups)


_CARDS = ["4111111111111111", "378282246310005", "5555555555554444", "30569309025904", "6011111111111117"]
_number = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(_CARDS),
    st.builds(lambda c, k: c[:k] + "." + c[k:], st.sampled_from(_CARDS), st.integers(1, 15)),
    st.builds(lambda c, e: f"{c[0]}.{c[1:]}e{e}", st.sampled_from(_CARDS), st.integers(-3, 20)),
    st.builds(lambda m, e: f"{m}E+{e}", st.integers(0, 10**6), st.integers(0, 25)),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+\-]?[0-9]+)?")


class _Raw(str):
    """A number spelt as it is in the JSON text (``_dumps``)."""


def _dumps(value: object, spaced: bool) -> str:
    comma, colon = (", ", ": ") if spaced else (",", ":")
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, list):
        return "[" + comma.join(_dumps(v, spaced) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + comma.join(json.dumps(k) + colon + _dumps(v, spaced) for k, v in value.items()) + "}"
    return json.dumps(value)


_json_value = st.recursive(
    st.one_of(
        _number.filter(_JSON_NUMBER.fullmatch).map(_Raw),  # spelt as it is, unquoted
        _number,  # as a string: a quoted number
        st.sampled_from(["x", "ts", "4111 1111", ""]),
    ),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.sampled_from(["ts", "a", "n"]), kids, max_size=3),
    max_leaves=12,
)


@settings(max_examples=600)
@given(_json_value, st.booleans())
def test_number_tokens_skipped_by_the_look_ahead_hold_no_card(value, spaced):
    # JSON as the raw check reads it (valid: the body was split by a JSON decoder): its strings never abut, so
    # a quoted number is always a whole string, and no number token overlaps another
    text = _dumps(value, spaced)
    json.loads(text)  # valid JSON
    fast = numbers_hold_card(text, cb._NUMBER_TOKEN, cb._QUOTED_NUMBER)
    assert fast == numbers_hold_card(text, _PLAIN_TOKEN, _PLAIN_QUOTED)


@settings(max_examples=600)
@given(_json_value, st.booleans())
def test_number_tokens_tried_where_re2_finds_their_look_ahead_are_the_look_aheads_tokens(value, spaced):
    text = _dumps(value, spaced)
    expected = [m.span(1) for m in cb._NUMBER_TOKEN.finditer(text)]
    assert [m.span(1) for m in cb._number_tokens(text)] == expected


@settings(max_examples=600)
@given(
    st.lists(
        st.sampled_from(
            ["1234567890123", "4111111111111111", "1.5e3", "-", ",", ":", "[", " ", "x", "é", "12", ".", "\udcff"]
        ),
        max_size=16,
    ).map("".join)
)
def test_number_tokens_on_any_text(text):
    assert [m.span(1) for m in cb._number_tokens(text)] == [m.span(1) for m in cb._NUMBER_TOKEN.finditer(text)]


_item = st.one_of(
    st.sampled_from(["4111", "1111", "3782", "822463", "10005", "12", "28", "2028", "5555", "4444", "0"]),
    st.integers(0, 10**7).map(str),
)
_array_piece = st.one_of(
    _item,
    _item.map(lambda s: f'"{s}"'),
    st.sampled_from(["[", "]", ",", ", ", " ,", "\n", '"x"', "-1", "1.5", "{", "}", ":", '"a":']),
)


@settings(max_examples=600)
@given(st.lists(_array_piece, max_size=24).map("".join))
def test_array_runs_matched_whole_read_what_item_by_item_matching_read(text):
    assert cb._card_in_array_items(text) == plain_array_items(text)


def test_an_array_split_card_is_found_after_other_items_and_not_read_as_items_in_a_string():
    assert cb._card_in_array_items('{"a": [7, "x", 4111, 1111, 1111, 1111]}')
    assert not cb._card_in_array_items('{"a": [4111, 1111, 1111, 1112]}')
    # in a string no items: the walk never reads one as items, and the text rules read its digits (before, the
    # items' pass read `,4111,1111,...` there a second time: a hostile string of `1111,1111,...` paid both)
    in_string = '{"a": "n,4111,1111,1111,1111,x"}'
    assert not cb._card_in_array_items(in_string) and cb.card_in_raw_text(in_string)
    assert cb._card_in_array_items('{"a": "n,4111", "b": [4111, 1111, 1111, 1111]}')  # after a string, items again


@given(st.text("0123456789", min_size=1, max_size=200), st.data())
def test_windows_luhn_from_prefix_sums_is_luhn(digits, data):
    ok = cn.luhn_of_windows(digits)
    a = data.draw(st.integers(0, len(digits) - 1))
    e = data.draw(st.integers(a + 1, len(digits)))
    assert ok(a, e) == cn.luhn_ok(digits[a:e])


@given(st.text("0123456789", min_size=4, max_size=8))
def test_issuer_lengths_from_four_digits_are_the_prefix_tables(digits):
    assert cn.card_lengths(digits, 0) == cn._lengths_slow(digits, 0)
    assert cn.card_lengths("622" + digits, 0) == cn._lengths_slow("622" + digits, 0)


_GROUP_PIECES = ["4111", "1111", "3782", "822463", "10005", "12", "28", "2028", "5555", "4444", "0", "4", "555"]
_SEPARATORS = [
    " ",
    "-",
    "+",
    ",",
    ".",
    "/",
    "\t",
    "  ",
    "\r\n",
    ", ",
    " / ",
    " - ",
    " ,",
    ",\n",
    "    ",
    "\t\t\t\t",
    " +",
]


@st.composite
def _group_runs(draw) -> list[str]:
    """Digit groups of 1-6 digits, a card's printed groups among them now and then."""
    return draw(cards.groups_with_a_card(st.sampled_from(_GROUP_PIECES), 6))


@settings(max_examples=1500, deadline=None)
@given(_group_runs(), st.sampled_from(_SEPARATORS))
def test_a_run_the_items_are_not_read_again_after_holds_every_card_they_would(groups, sep):
    """``card_in_text``'s ``read``: a run joined by one separator that ``reads_as_items`` takes (no dot, no wide
    white space alone) finds a card whenever the same groups as an array's items hold one, so the items' run is
    not read again when the text's held none (`[1111, 1111, ...]`, `[1111,1111,...]` read once)."""
    seps = [sep] * (len(groups) - 1)
    if len(groups) >= 2 and cn.reads_as_items(seps) and cn.card_in_groups(groups):
        assert cn._card_in_run(groups, seps, True, True), (groups, sep)
    if sep in (".", "    ", "\t\t\t\t", " +"):
        assert not cn.reads_as_items(seps)


def test_the_items_run_is_read_once_when_the_text_read_it_and_again_when_not():
    """The same groups in a string joined by dots (a window never starts after one) or by columns of spaces (no
    card after other numbers there) hold no card as text; as quoted items they do, and are read."""
    items = '["12", "4111", "1111", "1111", "1111"]'
    for text in ("12.4111.1111.1111.1111", "12    4111    1111    1111    1111", "12 +4111 +1111 +1111 +1111"):
        assert not cn.card_in_text(text)
        assert cb.card_in_raw_text(f'{{"b": "{text}", "a": {items}}}'), text
    assert not cb.card_in_raw_text('{"b": "12, 4111, 1111, 1111, 1112", "a": [12, 4111, 1111, 1111, 1112]}')
