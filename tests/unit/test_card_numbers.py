"""What is a card number (``livemetrics.card_numbers``) and where the walk finds one, and the byte scans
against the walk: the RE2 gate flags a superset of what the raw-text check finds, which finds a superset
of what the walk over the decoded event finds."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics import card_bytes
from livemetrics.card_data import find_card_data, redact, scan_decoder
from livemetrics.card_numbers import card_in_string, is_card_number
from livemetrics.validation import Rejection, parse_event
from tests.support import cards
from tests.support import factories as f


def walk_finds(raw: bytes) -> bool:
    return find_card_data(scan_decoder.decode(raw)) is not None


def test_the_attack_of_issue_13_is_rejected_and_never_echoed():
    ev = f.payment_failed(payment_overrides={"details": {"4111111111111111": "x", "pan": "PLACEHOLDER"}})
    raw = json.dumps(ev).replace('"PLACEHOLDER"', "4111111111111111.0").encode()
    r = parse_event(raw, 0)
    assert isinstance(r, Rejection) and r.reason == "card_data"
    assert (
        r.error == "card data is never accepted: a key of `$.payment.details` looks like a card number or security code"
    )
    assert "4111111111111111" not in json.dumps(r.raw)
    for number in (
        "4111111111111111.0",
        "4.111111111111111e15",
        "4111111111111111e0",
        "-4111111111111111",
        "41111111111111110e-1",
        "0.4111111111111111e16",
        "4111111111111111.999",
        "4111111111111111E+0",
    ):
        raw = json.dumps({"pan": "X"}).replace('"X"', number).encode()
        assert walk_finds(raw) and card_bytes.might_hold_card_data(raw), number
        assert redact(scan_decoder.decode(raw)) == {"pan": "[redacted card number]"}


def test_known_test_cards_of_every_network_are_card_numbers():
    for digits in cards.KNOWN_TEST_CARDS:
        assert is_card_number(digits), digits
        for spelling in (
            digits,
            cards.grouped(digits, " "),
            cards.grouped(digits, "-"),
            f"card {cards.grouped(digits, ' ')} declined",
            f"/pay?n={digits}&x=1",
            f"({digits})",
            f"{digits}.",
            "+" + digits,
            digits + ".00",
        ):
            assert card_in_string(spelling), spelling


def test_standing_alone():
    card = "4111111111111111"
    for text in (
        f"x{card}",
        f"{card}x",
        f"_{card}",
        f"ab{card}cd",
        f"7{card}",
        f"{card}0",
        f"sim-{card}abcd",
        f"0.{card}",
        f"v1.{card}",
        f"tel +{card}",
        f"{card[:8]}{'a' * 4}{card[8:]}",
        "41.11.11.11.11.11.11.11",  # a dot, slash, comma or white space run groups only a printed layout
        "2019, 4111, 1111, 1111, 1111",  # after a four-digit number: a list of them (a run of fours goes on)
        "123    4111    1111    1111    1111",  # after other columns: a table row's (white space alone)
        "4111    1111    1111    1111    2026",  # a table row's other column (a run of fours goes on)
        "4111, 1111, 1111, 1111, 2026, 12",
        "4111, 1111, 1111, 1111 / 12 / 28",  # another separator after the window: only the whole run
        "12, 4111-1111 1111.1111",  # separators mixed: from the run's start only
        "4111-1111 1111.1111.2026",  # nor on to a group of four (a run of fours goes on)
        "tel +49 4111 - 1111 - 1111 - 1111",  # the run starts after a plus: a phone number
        "1 +4111-1111-1111-1111",  # nor does a window start after a spaced plus in a run
        "12.4111.1111.1111.1111",  # never starts after a decimal point
        "41111111 11111111",
        "4111111-1111-1111-1111",
    ):
        assert not card_in_string(text), text
    for text in (
        f"card {card} declined",
        f"card:{card}",
        f"{card}-12/27",
        f"x {card}",
        f"a.{card}",
        f"é{card}",
        "4111 1111 1111 1111 111x",
        "ref ab12 4111 1111 1111 1111",
        "4111-1111 1111-1111",
        f"[{card}]",
        "4111.1111.1111.1111",
        "4111  1111  1111  1111",
        "4111/1111/1111/1111",
        "4111    1111    1111    1111",  # four or more spaces: columns of a printed card
        "4111\t\t1111\t\t1111\t\t1111",
        "4111, 1111, 1111, 1111",  # punctuation with white space around it
        "card: 4111 / 1111 / 1111 / 1111.",
        "4111 - 1111 - 1111 - 1111",
        "4111 . 1111 . 1111 . 1111",
        "4111-1111 1111.1111",  # separators mixed
        "4111, 1111, 1111, 1111, 12, 28",  # the expiry joined on: a wide separator from the run's start
        "4111    1111    1111    1111    12/28",
        "4111.1111 1111/1111",
        "3782 822463, 10005",  # Amex, mixed
        "12, 4111, 1111, 1111, 1111",  # after other numbers, one separator with punctuation throughout
        "qty 2 / 4111 / 1111 / 1111 / 1111 / 12 / 28",  # and on to its expiry
        "4111-1111 1111.1111.12",  # separators mixed, from the run's start on to a group of other than four
        "4111-1111 1111.1111, 12/28",
        f"000{card}",
    ):  # a whole-number spelling: its value, as for a JSON number
        assert card_in_string(text), text


def test_a_number_is_a_card_only_where_it_could_be_one():
    assert not is_card_number("7111111111111110")  # no issuer starts with 7
    assert not is_card_number("1795503867234")  # epoch ms: 1 is UATP, at 15 digits only
    assert is_card_number("378282246310005") and not is_card_number("3782822463100050")  # Amex: 15 digits only
    assert not is_card_number("5555555555554444"[:15] + "44")  # Mastercard: 16 digits only


# Cards in every spelling, anywhere in an event: the three checks agree (superset chain).
PLACES = [
    "path",
    "title",
    "details value",
    "details key",
    "nested details",
    "details list",
    "order_id",
    "name",
    "error_message",
    "session_id",
]


@st.composite
def events_with_a_card(draw) -> tuple[bytes, bool, str]:
    """(raw event, whether a card number is in it, where): sometimes a near miss (glued to a letter)."""
    digits = draw(cards.card_numbers())
    glued = draw(st.integers(0, 4)) == 0
    place = draw(st.sampled_from(PLACES))
    numbers = {}
    if place in ("details value", "nested details", "details list") and draw(st.booleans()):
        spelling = "NUMBER0"
        numbers[spelling] = draw(cards.json_numbers(digits))
        glued = False
    else:
        spelling = draw(cards.string_spellings(digits))
        if glued:
            spelling = "ref" + digits + "x"
    ev = f.payment_failed(page={"type": "home", "path": "/"})
    ev["type"] = "payment_failed"
    pay = ev["payment"]
    pay["details"] = draw(st.dictionaries(st.sampled_from(["id", "note", "n"]), st.integers(0, 10**12 - 1), max_size=3))
    target = {
        "path": (ev["page"], "path"),
        "title": (ev["page"], "title"),
        "details value": (pay["details"], "v"),
        "order_id": (pay, "order_id"),
        "name": (ev["customer"], "name"),
        "error_message": (pay, "error_message"),
        "session_id": (ev, "session_id"),
    }.get(place)
    if place == "nested details":  # under a nested `ts`: then the event has `"ts"` twice
        pay["details"]["x"] = {"ts": spelling}
    elif place == "details key":
        pay["details"][spelling] = 1
    elif place == "details list":
        pay["details"]["list"] = [1, {"a": spelling}]
    else:
        holder, key = target
        holder[key] = spelling
    spacing = draw(st.sampled_from([(", ", ": "), (",", ":")]))
    return cards.raw_json(ev, numbers, spacing).encode(), not glued, place


@settings(max_examples=1000, deadline=None)
@given(events_with_a_card())
def test_walk_within_raw_text_within_the_gate(case):
    raw, has_card, place = case
    # the raw-text stage sends an event with `"ts"` twice (or an escape, or a CVC key) to the walk anyway
    text = bool(
        card_bytes._TWO_TS.search(raw)
        or card_bytes._CVC_BYTES.search(raw)
        or b"\\u" in raw
        or card_bytes.card_in_raw_text(card_bytes.event_text(raw))
    )
    walk = walk_finds(raw)
    if place != "nested details":  # the byte checks are exercised, not bypassed by a second `"ts"`
        assert raw.count(b'"ts"') == 1
    gate = card_bytes._SUSPECT.search(raw) is not None
    assert walk == has_card, raw
    assert (not walk or text) and (not text or gate), raw
    assert card_bytes.events_to_card_check([raw]) == ([0] if gate else [])
