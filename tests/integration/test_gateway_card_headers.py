"""Red-team round (session 9, H3): a card number in the User-Agent header.

The body of every request is checked for card data; the User-Agent header is not part of it, yet the
gateway stamps it (its first 512 characters) on every event of the request. From Kafka it went to
ClickHouse (`events.user_agent`) and, on a failed payment, into the alert the dashboard, webhooks and
emails show (`client.user_agent`). Anyone holding the public browser key (or any client: a script sets the
header freely) could so put card numbers into a seller's history and alerts. Now a User-Agent that holds
one is stored as "[redacted card number]"; the events themselves are valid and go in (the parsed browser,
OS and device are kept).
"""

from __future__ import annotations

import json

import httpx
import pytest

from livemetrics import keys
from livemetrics.card_data import REDACTED
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.support import cards
from tests.support import factories as f
from tests.support.cards_stored import assert_stored_without_cards
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration


def user_agents() -> list[tuple[str, str]]:
    """(digits, User-Agent) in the spellings the body check knows: plain, grouped by spaces or dashes,
    next to the text of a real browser's header, and at the very end of the 512 characters kept."""
    out = []
    for i, digits in enumerate(cards.KNOWN_TEST_CARDS[:6]):
        spelt = (digits, cards.grouped(digits, " "), cards.grouped(digits, "-"))[i % 3]
        out.append((digits, f"{f.CHROME} ({spelt})"))
    digits = cards.KNOWN_TEST_CARDS[6]
    out.append((digits, f.CHROME + " " * (511 - len(f.CHROME) - len(digits)) + " " + digits))
    return out


def test_a_card_number_in_the_user_agent_reaches_neither_kafka_nor_clickhouse(settings, add_seller):
    browser, _ = add_seller(settings, "seller-a")
    registry = KeyRegistry(settings).start()
    wait_until(lambda: registry.record(keys.split_key(browser)[1]), 10, what="keys loaded")
    server = ThreadServer(create_gateway(settings, registry)).start()
    sent, posted = [], []
    try:
        for digits, ua in user_agents():
            assert len(ua) <= 512
            evs = [f.page_view(), f.payment_failed()]
            headers = f.browser_headers(browser, **{"User-Agent": ua})
            r = httpx.post(f"{server.url}/v1/events", json={"events": evs}, headers=headers, timeout=20)
            assert r.status_code == 202 and r.json() == {"accepted": 2, "rejected": []}, r.text
            sent += [e["event_id"] for e in evs]
            posted.append(digits)
        # A browser's own header is kept as it is.
        ok = f.page_view()
        r = httpx.post(f"{server.url}/v1/events", json=ok, headers=f.browser_headers(browser), timeout=20)
        assert r.status_code == 202
        sent.append(ok["event_id"])
    finally:
        server.stop()
        registry.stop()
    records = read_topic(settings, "page-events", expect=len(posted) + 1)
    records += read_topic(settings, "payment-events", expect=len(posted))
    values = {json.loads(m.value())["event_id"]: json.loads(m.value()) for m in records}
    assert sorted(values) == sorted(sent)
    assert values[ok["event_id"]]["user_agent"] == f.CHROME
    hostile = [v for k, v in values.items() if k != ok["event_id"]]
    assert {v["user_agent"] for v in hostile} == {REDACTED}
    assert {v["browser"] for v in hostile} == {"Chrome"}  # parsed from the header as sent
    flat = "".join(m.value().decode() for m in records).replace(" ", "").replace("-", "")
    assert not [d for d in posted if d in flat]

    assert_stored_without_cards(settings, sent, posted)
