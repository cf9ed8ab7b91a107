"""Headless Chromium runs a small React shop built during the test (esbuild bundles
producers/tracker-js/test/browser/app.jsx with react and react-dom from the package's node_modules) that
uses @livemetrics/tracker's hook and HOCs against the real gateway: every route change is one page view
with the page type its component names, and the page view queued just before the tab closes still
arrives (sendBeacon on page hide). Events are read back from Kafka."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading

import msgspec
import pytest

from livemetrics import keys
from livemetrics.contract import decode
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support import tracker_js
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until
from tests.support.services import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


class ShopFiles(http.server.SimpleHTTPRequestHandler):
    """The shop's files; POST /beacon-copy keeps the body of each beacon the page sent (index.html sends a
    copy of every sendBeacon to it), so that the test sees what went out as the page closed."""

    copies: list[bytes]

    def do_POST(self):
        self.copies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def react_shop(tmp_path):
    """The shop's bundle and page in a temporary directory, served by a static server of its own."""
    package = tracker_js.install()
    r = subprocess.run(
        [
            str(package / "node_modules" / ".bin" / "esbuild"),
            "test/browser/app.jsx",
            "--bundle",
            "--jsx=automatic",
            "--format=iife",
            '--define:process.env.NODE_ENV="production"',
            f"--outfile={tmp_path / 'app.js'}",
            "--log-level=warning",
        ],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    handler = type("Handler", (ShopFiles,), {"copies": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(handler, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}", handler.copies
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway(make_settings, add_seller, react_shop):
    """The real gateway, and a seller whose browser key allows the shop's origin."""
    _, shop_url, _ = react_shop
    s = make_settings(client_ip_rate_per_s=50)  # the default (the tests' is none): a 429 to read Retry-After from
    key, _ = add_seller(s, "seller-react")
    registry = KeyRegistry(s).start()
    key_id = key.split("_")[2]
    wait_until(lambda: registry.record(key_id), 10, what="keys loaded")
    keys.publish(
        s, msgspec.structs.replace(registry.record(key_id), origins=[*registry.record(key_id).origins, shop_url])
    )
    wait_until(lambda: shop_url in registry.record(key_id).origins, 15, what="the shop's origin allowed")
    server = ThreadServer(create_gateway(s, registry)).start()
    yield s, key, server
    server.stop()
    registry.stop()


def test_react_routes_and_beacon_reach_kafka(react_shop, gateway):
    from playwright.sync_api import sync_playwright

    root, shop_url, beacons = react_shop
    s, key, server = gateway
    config = json.dumps({"key": key, "endpoint": server.url, "heartbeatSeconds": 3600})  # no heartbeat in the beacon
    copy_beacons = (
        "const send = navigator.sendBeacon.bind(navigator);"
        "navigator.sendBeacon = (url, data) => { send('/beacon-copy', data); return send(url, data); };"
    )
    (root / "index.html").write_text(
        f'<!doctype html><html><head><title>React shop</title></head><body><div id="root">'
        f"</div><script>window.LM_CONFIG = {config}; {copy_beacons}</script>"
        '<script src="/app.js"></script></body></html>'
    )
    with sync_playwright() as pw:
        # The UA on the browser too: a beacon that outlives its page is sent with the browser's own.
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS + [f"--user-agent={f.CHROME}"])
        try:
            ctx = browser.new_context(user_agent=f.CHROME)
            page = ctx.new_page()
            page.goto(f"{shop_url}/")
            views = 1
            for button, url in [
                ("#cat-lamps", "/c/lamps"),
                ("#cat-chairs", "/c/chairs"),
                ("#offer-summer-sale", "/o/summer-sale"),
                ("#product-1", "/p/SKU-1"),
                ("#next-product", "/p/SKU-2"),
                (None, "/p/SKU-1"),
                ("#go-checkout", "/checkout"),
            ]:
                page.go_back() if button is None else page.click(button)
                page.wait_for_url(f"**{url}")
                views += 1
                page.wait_for_function(f"window.lmViews.length === {views}")
            page.click("#start-checkout")
            session = page.evaluate("window.lmTracker.sessionId()")
            page.evaluate("window.lmTracker.flush()")
            page.click("#cart")
            page.wait_for_function(f"window.lmViews.length === {views + 1}")
            page.close()  # within the tracker's 1 s flush delay: only the page-hide beacon can send the cart view
            # Before the browser closes: a beacon is sent after its page is gone, and closing the browser
            # at once could end its network service first (the test failed so on a loaded machine).
            wait_until(lambda: beacons, 10, what="the page-hide beacon")
            # A 429's Retry-After is readable from the shop's origin (the trackers wait at least that): this
            # client IP over its browser-key rate, with events of no type (rejected, never in page-events).
            (root / "blank.html").write_text("<!doctype html><title>blank</title>")
            other = ctx.new_page()
            other.goto(f"{shop_url}/blank.html")
            url = f"{server.url}/v1/events?key={key}"
            status, retry_after = other.evaluate(
                """async (url) => {
                  const body = JSON.stringify({ events: Array.from({ length: 60 }, () => ({ type: "none" })) });
                  for (let i = 0; i < 10; i++) {
                    const r = await fetch(url, { method: "POST", body, headers: { "Content-Type": "text/plain" } });
                    if (r.status === 429) return [r.status, r.headers.get("Retry-After")];
                  }
                  return [0, null];
                }""",
                url,
            )
            assert status == 429 and retry_after is not None and int(retry_after) >= 1, (status, retry_after)
        finally:
            browser.close()

    [beacon] = [json.loads(b)["events"] for b in beacons]
    assert [(e["type"], e["page"]["type"]) for e in beacon] == [("page_view", "cart")]
    # At least once: a batch may arrive twice (same event ids), so compare distinct events in order.
    pages = list(
        {
            e.event_id: e for e in (decode(m.value()) for m in read_topic(s, "page-events", expect=9, timeout=20))
        }.values()
    )
    got = [(e.page.type, e.page.category, e.page.offer_id, e.page.path) for e in pages if e.type == "page_view"]
    assert got == [
        ("home", None, None, "/"),
        ("category", "lamps", None, "/c/lamps"),
        ("category", "chairs", None, "/c/chairs"),
        ("offer", None, "summer-sale", "/o/summer-sale"),
        ("product", None, None, "/p/SKU-1"),
        ("product", None, None, "/p/SKU-2"),
        ("product", None, None, "/p/SKU-1"),
        ("checkout", None, None, "/checkout"),
        ("cart", None, None, "/cart"),
    ]
    assert [e.event_id for e in pages if e.type == "page_view"][-1] == beacon[0]["event_id"]
    checkout = list(
        {e.event_id: e for e in (decode(m.value()) for m in read_topic(s, "checkout-events", expect=1))}.values()
    )
    assert [(e.type, e.checkout.total, e.checkout.items[0].sku) for e in checkout] == [
        ("checkout_started", 39, "SKU-1")
    ]
    everything = pages + checkout
    assert {e.session_id for e in everything} == {session}
    assert {e.seller_id for e in everything} == {"seller-react"}
    assert not any(e.is_bot for e in everything) and {e.browser for e in everything} == {"Chrome"}
    assert all(e.page.title == "React shop" for e in pages)
