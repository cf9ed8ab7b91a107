"""Customer email addresses in a page's URL, referrer and title are masked at the gateway (H1 red team):
the tracker sends the path with its query string, and shops put addresses there (password resets,
order-status and newsletter links); an address in `page.path` was stored in ClickHouse for the events'
whole lifetime, shown to analysts, and left alone by `livemetrics erase` (docs/security.md, Personal
data). The page view itself is kept and counted."""

from __future__ import annotations

import msgspec
import pytest

from livemetrics.contract import decode
from livemetrics.page_emails import MASK, mask_emails
from livemetrics.settings import Settings
from producers.gateway.ingest import ClientInfo, ingest
from tests.support import factories as f

CLIENT = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME)
SETTINGS = Settings(topic_prefix="mail.")


def _page(**fields) -> dict:
    return f.page_view(page={"type": "other", "path": "/", **fields})


@pytest.mark.parametrize("exact_way", [False, True])
def test_addresses_in_a_pages_url_referrer_and_title_never_leave_the_gateway(exact_way):
    ev = _page(
        path="/account/reset?email=ada.lovelace%40example.com&token=abc",
        referrer="https://mail.example/open?to=Ada.Lovelace+shop@mail.example.co.uk",
        title="Orders of ada@example.com",
    )
    events = [ev, {"not": "an event"}] if exact_way else [ev]  # a bad event sends the body event by event
    out = ingest(msgspec.json.encode({"events": events}), CLIENT, SETTINGS)
    assert len(out.records) == 1
    raw = out.records[0][2].decode()
    # no piece of either address anywhere in the record (not "ada" alone: a random event id may hold it)
    pieces = ("lovelace", "ada@", "ada.", "ada%40", "example.com", "example.co.uk", "+shop")
    assert not any(p in raw.lower() for p in pieces), raw
    page = decode(out.records[0][2]).page
    assert page.path == f"/account/reset?email={MASK}&token=abc"
    assert page.referrer == f"https://mail.example/open?to={MASK}"
    assert page.title == f"Orders of {MASK}"


@pytest.mark.parametrize(
    "text",
    ["/@ada/profile", "/p/a@b", "/search?q=shoes+size+42", "/p/caf%C3%A9?x=1%202", "50% off @ the shop", "/u/%40ada"],
)
def test_what_is_no_address_is_kept_as_sent(text):
    assert mask_emails(text) == text
    out = ingest(msgspec.json.encode({"events": [_page(path=text, title=text)]}), CLIENT, SETTINGS)
    page = decode(out.records[0][2]).page
    assert (page.path, page.title) == (text, text)
