"""The dashboard's Settings tab (docs/notifications.md): a refused webhook URL says why, an added webhook shows its
signing secret once, a failing endpoint is named with its error at the top, and a failed delivery is
redelivered from the table. A real API (Kafka, chdb) and a real HTTP endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import pytest
from playwright.sync_api import Page, sync_playwright

from api.notify.channels import ChannelWriter, new_channel
from clickhouse.migrate import migrate
from tests.browser.test_dashboard import ARGS, CHROMIUM
from tests.support.axe import AXE, axe
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import wait_until
from tests.support.webhook_server import WebhookServer

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@contextmanager
def settings_tab(api: Api, seller: str) -> Iterator[Page]:
    """The dashboard opened with ``seller``'s read token, on its Settings tab (axe loaded for the checks)."""
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            ctx = b.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
            ctx.add_init_script(path=str(AXE))
            dash = ctx.new_page()
            dash.goto(f"{api.server.url}/dashboard")
            dash.get_by_label("Read token").fill(api.tokens[seller])
            dash.get_by_role("button", name="Open dashboard").click()
            dash.get_by_role("tab", name="Settings").click()
            yield dash
        finally:
            b.close()


def test_settings_tab_adds_a_webhook_shows_its_failure_and_redelivers(make_settings, add_seller):
    s = make_settings(dev_mode=True, notify_retry_for_s=1.5, **FAST_RETRIES)  # dev mode: http to 127.0.0.1
    migrate(s)
    hooks = WebhookServer().start()
    api = Api(s, {"shop": add_seller(s, "shop")[1]})
    try:
        with settings_tab(api, "shop") as dash:
            dash.wait_for_selector("#channel-list li.empty")

            dash.get_by_label("Webhook URL").fill("http://user:pw@127.0.0.1/x")
            dash.get_by_role("button", name="Add webhook").click()
            dash.wait_for_function("() => document.querySelector('#settings-msg').textContent.includes('Not added')")
            assert "must not carry a user or password" in dash.locator("#settings-msg").inner_text()

            dash.get_by_label("Webhook URL").fill(hooks.url("/shop", "fail"))
            dash.get_by_role("button", name="Add webhook").click()
            dash.wait_for_selector("#channel-list li.channel")
            assert dash.locator("#webhook-secret-value").inner_text().startswith("whsec_")

            # Rules: a bad minimum amount is refused with the reason; good rules are stored.
            dash.locator("details.rules summary").click()
            dash.get_by_label("Error spikes").uncheck()
            dash.get_by_label("Minimum amount (payment failures)").fill("lots")
            dash.get_by_label("Quiet hours time zone").fill("Europe/Berlin")
            dash.get_by_role("button", name="Save rules").click()
            dash.wait_for_selector("details.rules p.error")
            assert "min_amount" in dash.locator("details.rules p.error").inner_text()
            dash.get_by_label("Minimum amount (payment failures)").fill("5")
            dash.get_by_role("button", name="Save rules").click()
            dash.wait_for_selector("details.rules p:text('Rules saved.')")
            rules = api.call("GET", "shop", "/channels").json()["channels"][0]["rules"]
            assert rules == {
                "kinds": ["payment_failed", "traffic_dropped"],
                "min_amount": "5",
                "tz": "Europe/Berlin",
            }

            send(s, alert("shop", "a-1"))
            wait_until(lambda: api.deliveries("shop", status="failed"), 30, what="the delivery failed")
            dash.get_by_role("button", name="Refresh").click()
            trouble = dash.locator("#channel-trouble")
            trouble.wait_for(state="visible")
            assert "HTTP 500: boom" in trouble.inner_text() and "/shop" in trouble.inner_text()
            assert dash.locator('#deliveries-table tr[data-status="failed"]').count() == 1
            assert axe(dash) == []  # the tab with a channel, a failure banner and the table

            hooks.endpoints["/shop"].mode = "ok"
            dash.get_by_role("button", name="Redeliver alert a-1").click()
            wait_until(lambda: api.deliveries("shop", status="delivered"), 30, what="redelivered")
            dash.get_by_role("button", name="Refresh").click()
            dash.wait_for_selector('#deliveries-table tr[data-status="delivered"]')
            trouble.wait_for(state="hidden")
    finally:
        api.stop()
        api.registry.stop()
        hooks.stop()


def test_a_channel_stored_with_a_card_number_shows_blocked_and_why(make_settings, add_seller):
    """A channel stored before the API refused card numbers in targets (api/notify/channels.py, ``usable``) is
    listed with the card number blanked and the reason nothing is sent to it, next to its Remove button. Seen
    failing before settings.js showed ``blocked``: the row held only the blanked target."""
    s = make_settings(dev_mode=True)
    migrate(s)
    kek = s.key_encryption_key.get_secret_value()
    old = new_channel("shop", "webhook", "http://127.0.0.1:9/pay?pan=4111111111111111", kek)[0]
    writer = ChannelWriter(s)  # as the API wrote it before it checked targets
    writer.write(old.channel_id, msgspec.json.encode(old))
    writer.close()
    api = Api(s, {"shop": add_seller(s, "shop")[1]})
    try:
        wait_until(lambda: api.call("GET", "shop", "/channels").json()["channels"], 30, what="the channel read")
        with settings_tab(api, "shop") as dash:
            row = dash.locator("#channel-list li.channel")
            row.locator("p.blocked").wait_for()
            said = row.locator("p.blocked").inner_text()
            assert said.startswith("Blocked: not sent: this channel's webhook URL holds a card number"), said
            assert "remove the channel and add it again" in said
            assert "4111111111111111" not in dash.content() and "[redacted card number]" in row.inner_text()
            assert row.get_by_role("button", name="Remove webhook").count() == 1
            assert axe(dash) == []
    finally:
        api.stop()
        api.registry.stop()


# Records each notification the page creates (the real Notification still runs), so the test sees it.
SPY = """window.__shown = [];
window.Notification = class extends window.Notification {
  constructor(title, options) { super(title, options); window.__shown.push({ title, body: options && options.body }); }
};"""
HIDE = "Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' })"


def test_an_alert_in_a_background_tab_notifies_after_opt_in(make_settings, add_seller):
    s = make_settings()
    migrate(s)
    api = Api(s, {"shop": add_seller(s, "shop")[1]})
    wait_until(api.app.state.feed.caught_up.is_set, 20, what="live feed at the end of its topics")
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                ctx = b.new_context()
                ctx.grant_permissions(["notifications"], origin=api.server.url)
                ctx.add_init_script(SPY)
                dash = ctx.new_page()
                dash.goto(f"{api.server.url}/dashboard")
                dash.get_by_label("Read token").fill(api.tokens["shop"])
                dash.get_by_role("button", name="Open dashboard").click()
                dash.wait_for_selector('#conn[data-state="live"]', timeout=15000)

                send(s, alert("shop", "before-opt-in"))  # not opted in yet: the toast only
                dash.wait_for_selector("#toasts :text('12.50')", timeout=15000)
                dash.get_by_role("tab", name="Settings").click()
                dash.get_by_role("button", name="Notify me in this browser").click()
                dash.wait_for_function(
                    "() => document.querySelector('#browser-notify-status').textContent.startsWith('On')"
                )

                send(s, alert("shop", "visible"))  # the tab is in front: the toast says it, no notification
                dash.wait_for_function(
                    "() => document.querySelectorAll('#alert-feed li:not(.empty)').length === 2", timeout=15000
                )
                dash.evaluate(HIDE)
                send(s, alert("shop", "hidden"))
                dash.wait_for_function("() => window.__shown.length > 0", timeout=15000)
                shown = dash.evaluate("window.__shown")
                assert shown == [{"title": "Payment failed: 12.50 EUR", "body": "order o-1 · card · card_declined"}]
            finally:
                b.close()
    finally:
        api.stop()
        api.registry.stop()
