"""Property: whatever field a card number hides in, it never leaves the gateway (Kafka records or the
dead-letter copy), and every other valid event of the batch is still accepted."""

from __future__ import annotations

import json
import random
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.contract import decode
from livemetrics.settings import Settings
from producers.gateway.ingest import ClientInfo, dead_letter, ingest
from tests.support import cards
from tests.support import factories as f

SETTINGS = Settings(topic_prefix="prop.")
CLIENT = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME)
NO_DIGITS = st.text(alphabet=string.ascii_letters + " :/-_.#", max_size=12)


@st.composite
def card_numbers(draw) -> tuple[str, str]:
    """(digits, as written) for a card number of any issuer, grouped by spaces, dashes or nothing."""
    digits = draw(cards.card_numbers())
    return digits, cards.grouped(digits, draw(st.sampled_from(["", " ", "-"])))


PLACES = [
    lambda ev, v: ev["page"].__setitem__("path", v),
    lambda ev, v: ev["page"].__setitem__("title", v),
    lambda ev, v: ev["payment"]["details"].__setitem__("note", v),
    lambda ev, v: ev["payment"].__setitem__("error_message", v),
    lambda ev, v: ev["payment"].__setitem__("order_id", v),
    lambda ev, v: ev["customer"].__setitem__("name", v),
    lambda ev, v: ev["payment"]["details"].__setitem__("nested", [{"x": v}]),
    # `ts` is trusted only at the top level, as epoch ms; the same key anywhere else is scanned
    lambda ev, v: ev["payment"]["details"].__setitem__("ts", v),
    lambda ev, v: ev["payment"]["details"].__setitem__("nested", {"ts": v}),
]
NUMBER_PLACES = (2, 7, 8)  # where a bare JSON number is allowed


@settings(max_examples=300, deadline=None)
@given(
    card=card_numbers(),
    before=NO_DIGITS,
    after=NO_DIGITS,
    place=st.integers(0, len(PLACES) - 1),
    as_number=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_card_numbers_never_leave_the_gateway(card, before, after, place, as_number, seed):
    digits, written = card
    # standing alone: a digit run glued to a letter or `_` is part of an id (docs/ingest.md, "Privacy")
    value = int(digits) if as_number and place in NUMBER_PLACES else f"{before} {written} {after}"
    target = f.page_view() if place < 2 else f.payment_failed()
    PLACES[place](target, value)
    others = [f.page_view(), f.checkout_started(), f.payment_failed()]
    batch = others[:]
    batch.insert(random.Random(seed).randint(0, 3), target)
    result = ingest(json.dumps({"events": batch}).encode(), CLIENT, SETTINGS)

    assert result.total == 4 and len(result.records) == 3 and len(result.rejected) == 1
    assert result.rejected[0].reason == "card_data"
    assert sorted(decode(v).event_id for _, _, v in result.records) == sorted(e["event_id"] for e in others)
    leaving = [v for _, _, v in result.records] + [dead_letter(r, CLIENT, 0) for r in result.rejected]
    for out in leaving:
        text = out.decode()
        assert digits not in text.replace(" ", "").replace("-", ""), text
