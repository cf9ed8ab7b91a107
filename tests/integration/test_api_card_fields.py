"""Free text a seller's token gives the API that is stored or forwarded is refused with 422 naming the field
when it holds a card number, by the gateway's own rule (``card_data.card_field_error``, on
``card_numbers.card_in_string``): a webhook URL (stored in seller-channels, its path and query string sent
with every POST), an email address (stored, every alert sent to it) and a payment error's status note
(stored in ClickHouse, read by every token of the seller). Before, each was taken and stored. The value is
never quoted back. A running API (real Kafka, chdb)."""

from __future__ import annotations

import httpx
import pytest

from clickhouse.migrate import migrate
from tests.support.notify_api import Api

pytestmark = pytest.mark.integration

CARDS = (
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111.1111.1111.1111",
    "4111, 1111, 1111, 1111",
    "４１１１１１１１１１１１１１１１",
    "4111%2D1111%2D1111%2D1111",
)


def test_channel_targets_and_notes_with_a_card_number_are_refused_naming_the_field(make_settings, add_seller):
    """Seen failing before the change: each was stored (201, 200 or 404 for the note of an unknown alert)."""
    s = make_settings(smtp_host="smtp.shop.example")  # dev mode off: the production rules
    migrate(s)
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    try:
        for card in CARDS:
            for url in (f"https://hooks.shop.example/pay?pan={card}", f"https://hooks.shop.example/{card}/hook"):
                r = api.call("POST", "shop-a", "/webhooks", json={"url": url})
                assert r.status_code == 422, (url, r.text)
                assert r.json()["detail"].startswith("url: looks like it holds a card number"), r.text
                assert card not in r.text
            r = api.call("POST", "shop-a", "/emails", json={"address": f"{card}@shop.example"})
            assert r.status_code == 422 and r.json()["detail"].startswith("address: "), (card, r.text)
            r = httpx.post(
                f"{api.server.url}/v1/sellers/shop-a/payment-errors/a-1/status",
                json={"status": "contacted", "note": f"customer read out card {card} on the phone"},
                headers={"Authorization": f"Bearer {api.tokens['shop-a']}"},
                timeout=15,
            )
            assert r.status_code == 422 and r.json()["detail"].startswith("note: "), (card, r.text)
            assert card not in r.text
        assert api.call("GET", "shop-a", "/channels").json() == {"channels": []}
        # What only looks alike is taken: an order number in the query string, dates and prices in a note.
        r = api.call("POST", "shop-a", "/webhooks", json={"url": "https://hooks.shop.example/lm?order=12345678&v=2"})
        assert r.status_code == 201, r.text
        assert api.call("POST", "shop-a", "/emails", json={"address": "ops+2026@shop.example"}).status_code == 201
        r = httpx.post(
            f"{api.server.url}/v1/sellers/shop-a/payment-errors/a-1/status",
            json={"status": "contacted", "note": "called 07.12.2026 at 10:30, +49 170 1234 5678, EUR 1.299,00"},
            headers={"Authorization": f"Bearer {api.tokens['shop-a']}"},
            timeout=15,
        )
        assert r.status_code == 404, r.text  # past the check: no such alert
    finally:
        api.stop()


def test_the_admin_erase_refuses_an_email_or_phone_holding_a_card_number(make_settings, add_seller):
    """Seen failing before the change: each was taken and erased by (200), the card number read into
    ClickHouse's queries. Now 422 naming the field, never quoting the value, before anything is erased; a
    phone number by the rule of the event's `customer.phone` (``card_in_phone``: E.164 is taken)."""
    s = make_settings()
    migrate(s)
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    admin = {"Authorization": f"Bearer {s.admin_token.get_secret_value()}"}
    try:
        for card in CARDS:
            for field, body in (
                ("email", {"email": f"{card}@shop.example"}),
                ("phone", {"phone": card}),
                ("phone", {"email": "ada@example.com", "phone": f"tel. {card}"}),
            ):
                r = httpx.post(f"{api.server.url}/v1/admin/erase", json=body, headers=admin, timeout=60)
                assert r.status_code == 422, (body, r.text)
                assert r.json()["detail"].startswith(f"{field}: looks like it holds a card number"), r.text
                assert card not in r.text
        # What only looks alike is erased by: phone numbers in their spellings, an address with digits.
        for body in (
            {"phone": "+49 170 1234 5678"},
            {"phone": "0170 12345678"},
            {"phone": "+1 (555) 010-0199"},
            {"email": "ada.2026@example.com", "phone": "+44 20 7946 0958"},
            {"phone": "+560127629778476"},  # E.164, as phone numbers are stored: a phone's digits after the plus
        ):
            r = httpx.post(f"{api.server.url}/v1/admin/erase", json=body, headers=admin, timeout=60)
            assert r.status_code == 200, (body, r.text)
    finally:
        api.stop()
