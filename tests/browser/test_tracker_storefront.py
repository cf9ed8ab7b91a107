"""Headless Chromium walks the demo storefront (home -> category -> offer -> checkout -> payment ->
failed payment); every event arrives in Kafka with the right page type, category, offer and session."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from livemetrics import keys
from livemetrics.contract import decode
from livemetrics.keys import KeyRegistry
from livemetrics.origins import normalize_origin
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def shop(make_settings, add_seller):
    s0 = make_settings()
    key, _ = add_seller(s0, "seller-demo")
    s = s0.model_copy(update={"demo_storefront": True, "demo_browser_key": key})
    registry = KeyRegistry(s).start()
    wait_until(lambda: registry.record(key.split("_")[2]), 10, what="keys loaded")
    server = ThreadServer(create_gateway(s, registry)).start()
    # The demo pages come from the gateway itself: the key must allow that origin (as `up` sets it up).
    rec = registry.record(key.split("_")[2])
    origin = normalize_origin(server.url)
    keys.publish(s, msgspec.structs.replace(rec, origins=[*rec.origins, origin]))
    wait_until(lambda: origin in registry.record(rec.key_id).origins, 10, what="the demo origin allowed")
    yield s, server
    server.stop()
    registry.stop()


def test_demo_walk_reaches_kafka(shop):
    from playwright.sync_api import sync_playwright

    s, server = shop
    with sync_playwright() as pw:
        # The UA on the browser too, not only the context: keepalive fetches and beacons that outlive
        # their page are sent by the browser with its default (HeadlessChrome, a bot) user agent.
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS + [f"--user-agent={f.CHROME}"])
        try:
            ctx = browser.new_context(user_agent=f.CHROME)
            page = ctx.new_page()
            page.goto(f"{server.url}/demo/")
            page.click("#cat-lamps")
            page.wait_for_url("**/demo/c/lamps")
            page.click("#offer-summer-sale")
            page.wait_for_url("**/demo/o/summer-sale")
            page.click("#add-to-cart")
            page.click("#go-checkout")
            page.wait_for_url("**/demo/checkout")
            page.click("#place-order")
            page.wait_for_url("**/demo/payment")
            page.select_option("#pay-method", "card")
            page.click("#pay-fail")
            page.wait_for_url("**/demo/payment/error")
            assert page.text_content("#error-code") == "card_declined"
            session = page.evaluate("livemetrics.sessionId()")
            page.evaluate("livemetrics.flush()")
            wait_until(lambda: page.text_content("#lm-session") == session, 5, what="session shown")
        finally:
            browser.close()

    # Delivery is at least once: a batch whose fetch was cut off by a navigation is sent again with the
    # same event ids (downstream de-duplicates by event_id), so compare distinct events in order.
    pages = list(
        {
            e.event_id: e for e in (decode(m.value()) for m in read_topic(s, "page-events", expect=6, timeout=20))
        }.values()
    )
    views = [e for e in pages if e.type == "page_view"]
    assert [(e.page.type, e.page.category, e.page.offer_id) for e in views] == [
        ("home", None, None),
        ("category", "lamps", None),
        ("offer", None, "summer-sale"),
        ("checkout", None, None),
        ("payment", None, None),
        ("payment", None, None),
    ]
    checkout = list(
        {e.event_id: e for e in (decode(m.value()) for m in read_topic(s, "checkout-events", expect=1))}.values()
    )
    payments = list(
        {e.event_id: e for e in (decode(m.value()) for m in read_topic(s, "payment-events", expect=2))}.values()
    )
    everything = pages + checkout + payments
    assert {e.session_id for e in everything} == {session}
    assert {e.seller_id for e in everything} == {"seller-demo"}
    assert not any(e.is_bot for e in everything) and {e.browser for e in everything} == {"Chrome"}
    assert checkout[0].checkout.total == 39.0 and checkout[0].customer.email == "ada@example.com"
    assert Counter(e.type for e in payments) == {"payment_started": 1, "payment_failed": 1}
    failed = next(e for e in payments if e.type == "payment_failed")
    assert failed.payment.error_code == "card_declined" and failed.payment.method == "card"
    assert failed.ip == "127.0.0.1" and failed.customer.phone == "+44 20 7946 0958"
    assert failed.payment.items and failed.payment.items[0].sku == "SKU-1"
