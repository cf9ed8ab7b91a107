"""Browser keys are public (docs/security.md): a copied key works only from its seller's origins, under a
far lower default rate than a server key and a per-client-IP limit, for the event types it allows; the
gateway stamps the key kind on every event (the alerts' trust label). Real broker, real gateway, dev mode
off (one case turns it on to show what it allows)."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import msgspec
import pytest

from livemetrics import keys
from livemetrics.contract import decode
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.client_ips import fresh_client_ip
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration

SHOP = "https://shop.example"
BROWSER_RATE = 10  # events/s: a burst of 20
IP_RATE = 20  # events/s per client IP: a burst of 40


@pytest.fixture(scope="module")
def gw(kafka, clickhouse_dsn, tmp_path_factory):
    from tests.support.stack import module_settings

    # X-Forwarded-For from the test client is trusted, so that each test sends from client IPs of its own.
    s = module_settings(
        kafka,
        clickhouse_dsn,
        tmp_path_factory.mktemp("browser-keys"),
        dev_mode=False,
        browser_rate_per_s=BROWSER_RATE,
        client_ip_rate_per_s=IP_RATE,
        trusted_proxies=["127.0.0.1"],
    )
    assert not s.dev_mode
    registry = KeyRegistry(s).start()
    server = ThreadServer(create_gateway(s, registry)).start()
    dev = ThreadServer(create_gateway(s.model_copy(update={"dev_mode": True}), registry)).start()
    try:
        yield {"settings": s, "registry": registry, "url": server.url, "dev_url": dev.url}
    finally:
        dev.stop()
        server.stop()
        registry.stop()


def add_key(gw, kind: str = "pk", **extra) -> str:
    s = gw["settings"]
    if kind == "sk":
        presented, rec = keys.new_server_key("seller-a", s.key_encryption_key.get_secret_value(), **extra)
    else:
        presented, rec = keys.new_key(kind, "seller-a", **extra)
    keys.publish(s, rec)
    wait_until(lambda: gw["registry"].record(rec.key_id) is not None, 15, what="key loaded")
    return presented


def client_ip() -> str:
    return fresh_client_ip()  # a fresh one per use (no shared bucket)


def post(url: str, key: str, events: list[dict], ip: str, **headers: str) -> httpx.Response:
    h = {"Authorization": f"Bearer {key}", "User-Agent": f.CHROME, "X-Forwarded-For": ip, **headers}
    return httpx.post(f"{url}/v1/events", json={"events": events}, headers=h, timeout=20)


def post_signed(url: str, key: str, events: list[dict], ip: str) -> httpx.Response:
    _, key_id, secret = keys.split_key(key)
    body, ts = json.dumps({"events": events}).encode(), f"{time.time():.3f}"
    return httpx.post(
        f"{url}/v1/events",
        content=body,
        timeout=20,
        headers={
            "X-Livemetrics-Key-Id": key_id,
            "X-Livemetrics-Timestamp": ts,
            "X-Livemetrics-Signature": keys.sign(secret, ts, body),
            "User-Agent": f.CHROME,
            "X-Forwarded-For": ip,
        },
    )


def test_a_browser_key_works_only_from_its_allowed_origins(gw):
    key = add_key(gw, origins=[SHOP, "https://www.shop.example"])
    url, ip = gw["url"], client_ip()
    assert post(url, key, [f.page_view()], ip, Origin=SHOP).status_code == 202
    assert post(url, key, [f.page_view()], ip, Origin="https://www.shop.example").status_code == 202
    # no Origin (sendBeacon, some GETs): the Referer's origin decides; its path does not matter
    assert post(url, key, [f.page_view()], ip, Referer=f"{SHOP}/checkout?step=2").status_code == 202
    r = post(url, key, [f.page_view()], ip, Origin="https://evil.example")
    assert r.status_code == 403 and r.json()["error"] == (
        f"origin https://evil.example is not allowed for browser key {keys.split_key(key)[1]} "
        f"(allowed: {SHOP}, https://www.shop.example)"
    )
    # the Origin wins over a Referer of an allowed origin (a page elsewhere cannot borrow the shop's)
    assert post(url, key, [f.page_view()], ip, Origin="https://evil.example", Referer=f"{SHOP}/").status_code == 403
    for headers in ({}, {"Origin": "null"}):  # curl; a sandboxed frame or a file:// page
        r = post(url, key, [f.page_view()], ip, **headers)
        assert r.status_code == 403 and "names none (no Origin or Referer header)" in r.json()["error"], r.text


def test_a_browser_key_without_origins_is_refused_outside_dev_mode(gw):
    key = add_key(gw)
    r = post(gw["url"], key, [f.page_view()], client_ip(), Origin=SHOP)
    assert r.status_code == 403
    assert f"browser key {keys.split_key(key)[1]} has no allowed origins" in r.json()["error"]
    assert "sellers add --origin" in r.json()["error"]
    # dev mode (`livemetrics up`) takes it from anywhere, as before
    assert post(gw["dev_url"], key, [f.page_view()], client_ip()).status_code == 202


def test_server_keys_are_not_origin_checked(gw):
    key = add_key(gw, "sk")
    assert post_signed(gw["url"], key, [f.page_view()], client_ip()).status_code == 202


def test_browser_keys_have_a_far_lower_default_rate_than_server_keys(gw):
    browser, server = add_key(gw, origins=[SHOP]), add_key(gw, "sk")
    events = [f.heartbeat() for _ in range(2 * BROWSER_RATE)]  # the browser key's whole burst
    assert post(gw["url"], browser, events, client_ip(), Origin=SHOP).status_code == 202
    r = post(gw["url"], browser, events * 3, client_ip(), Origin=SHOP)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"].startswith(
        f"key {keys.split_key(browser)[1]} is over its rate limit ({BROWSER_RATE} events/s)"
    )
    # a server key's default (gateway_rate_per_s) takes many times that, from one address
    ip = client_ip()
    for _ in range(2):
        assert post_signed(gw["url"], server, events * 5, ip).status_code == 202


def test_one_client_ip_cannot_spend_more_than_its_own_limit_whatever_the_key(gw):
    k1, k2 = add_key(gw, origins=[SHOP], rate_per_s=1000), add_key(gw, origins=[SHOP], rate_per_s=1000)
    ip, events = client_ip(), [f.heartbeat() for _ in range(IP_RATE + 10)]
    assert post(gw["url"], k1, events, ip, Origin=SHOP).status_code == 202
    r = post(gw["url"], k2, events, ip, Origin=SHOP)  # another key, the same client: over its 2 s burst
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"].startswith(
        f"client IP {ip} is over the per-client limit of browser-key traffic ({IP_RATE} events/s)"
    )
    # other clients are not held back, and the refused request spent none of the key's room
    assert post(gw["url"], k2, events, client_ip(), Origin=SHOP).status_code == 202
    # an IPv6 client's whole /64 is one client (a host holds one; its addresses are free to pick)
    net = f"2001:db8:{uuid.uuid4().int % 65536:x}:1::"
    assert post(gw["url"], k1, events, net + "1", Origin=SHOP).status_code == 202
    r = post(gw["url"], k2, events, net + "2", Origin=SHOP)
    assert r.status_code == 429 and "client IP" in r.json()["error"]


def test_a_key_sends_only_its_allowed_event_types(gw):
    key = add_key(gw, origins=[SHOP], event_types=["page_view", "heartbeat", "checkout_started"])
    ip = client_ip()
    assert post(gw["url"], key, [f.page_view(), f.checkout_started()], ip, Origin=SHOP).status_code == 202
    r = post(gw["url"], key, [f.page_view(), f.payment_failed()], ip, Origin=SHOP)
    assert r.status_code == 403 and r.json()["error"] == (
        f"key {keys.split_key(key)[1]} may not send `payment_failed` events "
        "(allowed: page_view, heartbeat, checkout_started)"
    )
    server = add_key(gw, "sk", event_types=["payment_failed"])
    assert post_signed(gw["url"], server, [f.payment_failed()], ip).status_code == 202
    assert post_signed(gw["url"], server, [f.page_view()], ip).status_code == 403


def test_every_event_carries_the_kind_of_key_that_sent_it(make_settings):
    """The gateway stamps it from the key; a sender cannot set it."""
    s = make_settings(trusted_proxies=["127.0.0.1"])
    registry = KeyRegistry(s).start()
    server = ThreadServer(create_gateway(s, registry)).start()
    try:
        g = {"settings": s, "registry": registry}
        browser, signed = add_key(g, origins=[SHOP]), add_key(g, "sk")
        by_browser, by_server = f.payment_failed(), f.payment_failed()
        assert post(server.url, browser, [by_browser], client_ip(), Origin=SHOP).status_code == 202
        assert post_signed(server.url, signed, [by_server], client_ip()).status_code == 202
        forged = {**f.payment_failed(), "source": "server"}
        r = post(server.url, browser, [forged], client_ip(), Origin=SHOP)
        assert r.status_code == 422 and "source" in r.json()["error"], r.text
        got = {e.event_id: e for e in (decode(m.value()) for m in read_topic(s, "payment-events", expect=2))}
        assert set(got) == {by_browser["event_id"], by_server["event_id"]}
        assert got[by_browser["event_id"]].source == "browser" and got[by_server["event_id"]].source == "server"
        raw = {
            json.loads(m.value())["event_id"]: json.loads(m.value()) for m in read_topic(s, "payment-events", expect=2)
        }
        assert raw[by_server["event_id"]]["source"] == "server"
        assert (
            msgspec.json.decode(
                b'{"event_id":"x","type":"page_view","seller_id":"s","session_id":"s","ts":1,"received_at":1}',
                type=type(got[by_browser["event_id"]]),
            ).source
            == "browser"
        )
    finally:
        server.stop()
        registry.stop()
