"""The trust label end to end (docs/security.md): a payment failure sent with a browser key and one signed
with the seller's server key reach the API's live alerts and its stored payment errors, each saying who
reported it. Real gateway, broker, worker, sink (chdb) and API."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from livemetrics import keys
from tests.support import factories as f
from tests.support.servers import get_json, wait_until
from tests.support.stack import Stack, new_seller

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(settings, tmp_path):
    sellers = {"shop": new_seller(settings, "shop"), "warmup": new_seller(settings, "warmup")}
    st = Stack(settings, tmp_path, sellers)
    try:
        st.warm_up()
        yield st
    finally:
        st.close()


def post_signed(stack: Stack, key: str, events: list[dict]) -> httpx.Response:
    _, key_id, secret = keys.split_key(key)
    body, ts = json.dumps({"events": events}).encode(), f"{time.time():.3f}"
    return httpx.post(
        f"{stack.gateway.url}/v1/events",
        content=body,
        timeout=15,
        headers={
            "X-Livemetrics-Key-Id": key_id,
            "X-Livemetrics-Timestamp": ts,
            "X-Livemetrics-Signature": keys.sign(secret, ts, body),
            "User-Agent": f.CHROME,
        },
    )


def test_alerts_say_whether_the_browser_or_the_sellers_server_reported_them(stack):
    browser, token = stack.sellers["shop"]
    server, rec = keys.new_server_key("shop", stack.settings.key_encryption_key.get_secret_value())
    keys.publish(stack.settings, rec)
    wait_until(lambda: stack.registry.record(rec.key_id) is not None, 15, what="server key loaded")
    by_browser, by_server = f.payment_failed(), f.payment_failed()
    assert stack.post(browser, {"events": [by_browser]}).status_code == 202
    assert post_signed(stack, server, [by_server]).status_code == 202
    want = {by_browser["event_id"]: "browser", by_server["event_id"]: "server"}

    def labels(path: str) -> dict:
        items = get_json(f"{stack.api.url}/v1/sellers/shop/{path}", token)["items"]
        return {a["alert_id"]: a.get("source") for a in items if a["alert_id"] in want}

    wait_until(lambda: len(labels("alerts")) == 2, 60, interval=0.2, what="both live alerts", alive=stack.worker.alive)
    assert labels("alerts") == want
    wait_until(lambda: len(labels("payment-errors")) == 2, 60, interval=0.3, what="both stored payment errors")
    assert labels("payment-errors") == want
