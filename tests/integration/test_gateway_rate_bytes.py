"""Red-team round (session 9, H3): the rate limits count bytes too, not only events.

A key's rate (and a client IP's) was in events per second, whatever their size: an event may be 32 KiB
and a storefront's are ~0.1-0.5 KiB as sent, so the public browser key, at its 200 events/s per gateway
process, could put ~6.5 MB/s of maximal events into Kafka and ClickHouse (kept 400 days, shared by every
seller) where its real traffic at that rate is ~0.06 MB/s: ~100 times the bytes its rate was meant to
allow. Now a request counts as at least one event per ``BYTES_PER_EVENT`` (4 KiB) of its body.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from livemetrics import keys
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from producers.gateway.events import BYTES_PER_EVENT
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration

RATE = 10  # events/s: a burst of 20


def big_checkout() -> dict:
    """A valid checkout_started of 24-32 KiB (the contract's limit per event is 32 KiB)."""
    items = [
        {"sku": f"SKU-{i:04d}-" + "x" * 50, "name": "A lamp " + "y" * 90, "qty": 1, "unit_price": 1} for i in range(150)
    ]
    ev = f.checkout_started(checkout={"items": items, "total": 150, "currency": "EUR"})
    assert 24 * 1024 < len(json.dumps(ev)) < 32 * 1024
    return ev


def test_a_key_pays_its_rate_by_the_bytes_it_sends_past_four_kib_an_event(settings):
    key, rec = keys.new_key("pk", "seller-a", rate_per_s=RATE, origins=[f.SHOP_ORIGIN])
    small_key, small_rec = keys.new_key("pk", "seller-b", rate_per_s=RATE, origins=[f.SHOP_ORIGIN])
    for r in (rec, small_rec):
        keys.publish(settings, r)
    registry = KeyRegistry(settings).start()
    wait_until(lambda: registry.record(rec.key_id) and registry.record(small_rec.key_id), 10, what="keys loaded")
    server = ThreadServer(create_gateway(settings, registry)).start()
    try:
        sent, answers = [], []
        started = time.monotonic()
        for _ in range(8):
            ev = big_checkout()
            body = json.dumps(ev).encode()
            r = httpx.post(f"{server.url}/v1/events", content=body, headers=f.browser_headers(key), timeout=20)
            answers.append(r.status_code)
            if r.status_code == 202:
                sent.append(ev["event_id"])
            else:
                refused = r
        elapsed = time.monotonic() - started
        per_request = len(body) // BYTES_PER_EVENT  # 6 or 7 events' worth each (one each on the old code)
        # The burst (20) and what refilled meanwhile, no more: 8 requests of one event each all passed before.
        assert answers[0] == 202 and 429 in answers, answers
        assert len(sent) * per_request <= 2 * RATE + RATE * elapsed + per_request, (answers, elapsed)
        r = refused
        assert f"{BYTES_PER_EVENT} bytes" in r.json()["error"] and int(r.headers["Retry-After"]) >= 1
        got = read_topic(settings, "checkout-events", expect=len(sent))
        assert sorted(json.loads(m.value())["event_id"] for m in got) == sorted(sent)
        # A storefront's events (well under 4 KiB each) still get their whole burst, one request each.
        for _ in range(2 * RATE):
            body = json.dumps(f.page_view()).encode()
            headers = f.browser_headers(small_key)
            assert httpx.post(f"{server.url}/v1/events", content=body, headers=headers, timeout=20).status_code == 202
    finally:
        server.stop()
        registry.stop()
