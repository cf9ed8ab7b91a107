"""Storefront strings in the dashboard (a hostile sender with the seller's public browser key): a failed
payment whose every free-text field is hostile (HTML, an attribute breakout, a `javascript:` URL, bidi
overrides, a user agent with markup, an email address carrying `?bcc=...&body=...`) goes through the real
gateway, worker, sink and API. The toast, the alert feed, the payment-error table and the error-trends
report show each value as text: no element or handler of the sender's, no script run, the page title
untouched, and the mail link holds the address only. A flood of failures shows at most three toasts
(each one stacked on the last covered the whole page), every failure still in the feed (docs/dashboard.md,
Security)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard import browser  # noqa: F401 - shared fixture
from tests.browser.test_dashboard_history import open_history, sign_in, table
from tests.support import factories as f
from tests.support.servers import get_json, wait_until
from tests.support.stack import Stack, module_settings, new_seller

pytestmark = [pytest.mark.integration, pytest.mark.browser]
SELLER = "hostile"
FLOOD = "flooded"
MARKUP = '<img src=x onerror="window.__pwned=1">'
BREAKOUT = '"><svg onload="window.__pwned=2"></svg><a href="javascript:window.__pwned=3">x</a>'
CODE = "declined<b>exe.gnp"  # markup (identifiers refuse bidi and other format characters: 3055ab6)
MESSAGE = BREAKOUT + "\u202e\u2066exe.gnp"  # free text keeps them: bidi override and isolate, reads reversed
EMAIL = "ada@example.com?bcc=spy%40evil.example&subject=Refund&body=Pay%20at%20evil.example"
ORDER = "ORD-H1<script>window.__pwned=4</script>"

# What the page holds that the sender may have put there: handlers, images, javascript: links, a run script.
FOREIGN = """() => ({
  handlers: [...document.querySelectorAll('body *')]
    .filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).map((e) => e.outerHTML.slice(0, 80)),
  injected: document.querySelectorAll('body img, body script, svg[onload], a[href^="javascript:"], b').length,
  pwned: window.__pwned ?? null,
  title: document.title,
})"""
CLEAN = {"handlers": [], "injected": 0, "pwned": None, "title": f"{SELLER}: livemetrics"}


@pytest.fixture(scope="module")
def stack(kafka, clickhouse_dsn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash-hostile")
    s = module_settings(kafka, clickhouse_dsn, tmp)
    st = Stack(s, tmp, {name: new_seller(s, name) for name in (SELLER, FLOOD, "warmup")})
    try:
        st.warm_up()
        yield st
    finally:
        st.close()


def _send_hostile_failure(stack: Stack, key: str) -> None:
    sid = "sess-hostile-1"
    path = {"type": "checkout", "path": f"/checkout/{MARKUP}", "title": BREAKOUT, "referrer": "javascript:alert(1)"}
    failure = f.payment_failed(
        session_id=sid,
        customer={"email": EMAIL, "name": MARKUP, "phone": "+44 20 7946 0958"},
        payment={
            "method": "card",
            "amount": "12.50",
            "currency": "EUR",
            "order_id": ORDER,
            "error_code": CODE,
            "error_message": MESSAGE,
            "details": {MARKUP: BREAKOUT, "link": "javascript:window.__pwned=5"},
        },
    )
    headers = {**f.browser_headers(key), "User-Agent": f"{f.CHROME} {MARKUP}"}
    body = {"events": [f.page_view(session_id=sid, page=path), failure]}
    r = httpx.post(f"{stack.gateway.url}/v1/events", json=body, headers=headers, timeout=15)
    assert r.status_code == 202 and r.json()["accepted"] == 2, r.text


def test_hostile_strings_are_shown_as_text_everywhere(stack, browser):  # noqa: F811 - the fixture
    key, token = stack.sellers[SELLER]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = ctx.new_page()
    try:
        sign_in(page, f"{stack.api.url}/dashboard", token)
        _send_hostile_failure(stack, key)
        toast = page.locator("#toasts .toast").first
        expect(toast).to_contain_text("Payment failed", timeout=15000)
        expect(toast).to_contain_text(f"{CODE}: {MESSAGE}")
        expect(toast).to_contain_text(MARKUP)  # the customer's "name", as text
        expect(page.locator("#alert-feed")).to_contain_text(ORDER)
        assert page.evaluate(FOREIGN) == CLEAN

        api = f"{stack.api.url}/v1/sellers/{SELLER}"
        wait_until(
            lambda: get_json(f"{api}/payment-errors", token)["items"], 30, interval=0.3, what="the stored failure"
        )
        page.get_by_role("tab", name="Payment errors").click()
        row = page.locator("#errors-table tbody tr", has_text="ORD-H1")
        expect(row).to_have_count(1, timeout=15000)
        expect(row).to_contain_text(CODE)
        expect(row).to_contain_text(MESSAGE)
        assert row.locator("a[href^='mailto:']").get_attribute("href") == (
            "mailto:ada@example.com%3Fbcc%3Dspy%2540evil.example%26subject%3DRefund%26body%3DPay%2520at%2520evil.example"
        )
        row.get_by_text("Timeline and client").click()
        diagnostics = row.locator("pre").inner_text()
        assert json.dumps(MARKUP) in diagnostics and "javascript:window.__pwned=5" in diagnostics  # as JSON text
        assert page.evaluate(FOREIGN) == CLEAN

        today = datetime.now(UTC).date()
        wait_until(
            lambda: get_json(f"{api}/reports/error-trends?from={today}T00:00:00Z", token)["rows"],
            30,
            interval=0.3,
            what="the failure in the error-trends report",
        )
        open_history(page, today, today, "UTC")
        assert [r["Error code"] for r in table(page, "error-trends")] == [CODE]
        assert page.evaluate(FOREIGN) == CLEAN
    finally:
        ctx.close()


def test_a_flood_of_failures_shows_three_toasts_and_every_one_in_the_feed(stack, browser):  # noqa: F811
    key, token = stack.sellers[FLOOD]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = ctx.new_page()
    try:
        sign_in(page, f"{stack.api.url}/dashboard", token)
        failures = [f.payment_failed(payment_overrides={"order_id": f"ORD-F{i:02d}"}) for i in range(40)]
        assert stack.post(key, {"events": failures}).status_code == 202
        # (the burst may also raise an error spike: a shop-wide alert, counted apart)
        page.wait_for_function(
            "() => document.querySelectorAll('#alert-feed li[data-alert-id]:not(.spike)').length === 40"
        )
        single = page.locator("#toasts .toast:not(.spike)")
        assert single.count() == 3 and page.locator("#toasts .toast.spike").count() <= 3
        assert len(set(single.all_inner_texts())) == 3  # the newest three, one each
    finally:
        ctx.close()
