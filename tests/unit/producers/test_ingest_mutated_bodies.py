"""Property: whatever bytes a body holds, generated bodies (tests/support/fuzz_bodies.py) with a few bytes
cut, inserted (quotes, escapes, brackets by the hundred, invalid UTF-8, huge exponents, card numbers),
copied or overwritten, the gateway's validation answers: ``BodyError`` for a body unusable as a whole, else
every event accepted or rejected by its index, each accepted record an event of the contract, and no card
number standing alone in a record or a dead-letter copy. Anything else (an exception, an event counted
twice or lost) would be a 500 for the sender or a record no consumer can read."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livemetrics.contract import decode
from livemetrics.settings import Settings
from livemetrics.validation import BodyError
from producers.gateway.ingest import ClientInfo, dead_letter, ingest
from tests.support import factories as f
from tests.support.fuzz_bodies import CARDS, bodies

SETTINGS = Settings(topic_prefix="mut.")
CLIENT = ClientInfo(seller_id="fuzz", ip="203.0.113.9", user_agent=f.CHROME)
# The generated card numbers as digits, standing alone: glued to a letter, digit or `_` they are no card
# number by the rules (docs/ingest.md), and the mutations glue some.
CARD_DIGITS = [re.compile(rb"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.sub(r"\D", "", c).encode()) for c in CARDS]
INSERTS = [b'"', b"\\", b"\\u", b"\\ud800", b"[", b"{", b"]", b"}", b",", b":", b"\xff", b"\xc3", b"-", b"e999"]
INSERTS += [b"1e-999", b"null", b"4111111111111111", b"[" * 300, b"[" * 1100, b"{" * 150, b" " * 3]
# Inside a string, text that keeps the JSON valid: escapes, other digits and spaces, card numbers.
IN_STRING = [b"\\u0034", b"\\n", b"\\ud800", b"\\ud83d\\ude00", b"\\u0000", "٤١١١ ".encode(), "４１".encode()]
IN_STRING += ["\u200b".encode(), b"%34%31", b"&#52;", b"4111 1111 1111 1111", b"4111111111111111", b"9" * 40]


@st.composite
def mutated(draw, body: bytes) -> bytes:
    """``body`` with 1-3 edits past its first byte (an edit there only ever makes "not a JSON object", and
    hypothesis' draws favour 0: most bodies were refused before their events were read)."""
    b = bytearray(body or b"{}")
    rnd = draw(st.randoms(use_true_random=False))
    for _ in range(draw(st.integers(1, 3))):
        at = 1 + rnd.randrange(len(b) - 1) if len(b) > 1 else 0
        op = draw(st.sampled_from(["cut", "insert", "overwrite", "copy", "in_string", "in_string"]))
        if op == "in_string":
            quotes = [m.end() for m in re.finditer(rb'[^\\]"', bytes(b))]
            if quotes:
                at = quotes[rnd.randrange(len(quotes))]  # right after a quote: inside a string or a key
                b[at:at] = draw(st.sampled_from(IN_STRING))
        elif op == "cut":
            del b[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            b[at:at] = draw(st.sampled_from(INSERTS))
        elif op == "overwrite" and b:
            b[at] = draw(st.integers(0, 255))
        elif b:  # a copy of a piece of the body (cuts may have left nothing)
            start = rnd.randrange(len(b))
            b[at:at] = b[start : start + draw(st.integers(1, 40))]
    return bytes(b)


def no_card_standing_alone(value: bytes) -> None:
    assert not any(card.search(value) for card in CARD_DIGITS), value[:300]


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_mutated_body_gets_an_answer_for_every_event_and_no_card_leaves(data):
    body, _ = data.draw(bodies("fuzz"))
    body = data.draw(mutated(body))
    try:
        out = ingest(body, CLIENT, SETTINGS)
    except BodyError as exc:
        assert str(exc)  # the sender is told what is wrong with the body
        return
    assert len(out.records) + len(out.rejected) == out.total
    assert len({r.index for r in out.rejected}) == len(out.rejected) <= out.total
    for topic, key, value in out.records:
        assert topic.startswith("mut.") and key
        decode(value)  # an event of the contract: every consumer can read it
        no_card_standing_alone(value)
    for rejection in out.rejected:
        assert rejection.error and 0 <= rejection.index < out.total
        no_card_standing_alone(dead_letter(rejection, CLIENT, 0))


def test_a_body_nested_past_the_decoders_depth_is_a_body_error_for_ingest():
    """The 30,000-example run's finding: an unknown field's deep value, skipped by the clean path's decode,
    raised RecursionError out of ``ingest`` (the HTTP endpoint caught it; the Stripe route's ``parse_body``
    and the card benchmark did not)."""
    body = b'{"vents": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    with pytest.raises(BodyError, match="nested too deeply"):
        ingest(body, CLIENT, SETTINGS)
