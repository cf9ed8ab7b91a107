"""Validation is charged to whoever sends it (H1 red team): a storefront's events take the gateway 10-50
us each, but events made expensive for the card check (long strings of "1 1 1 ...") took tens of ms each,
and every one counted as one event of the sender's rate: a copied browser key could keep a gateway process
busy for every seller. A request that took more than VALIDATION_CPU_PER_EVENT_S per event is charged its
digit groups (DIGIT_GROUPS_PER_EVENT to an event): for a browser key to its client IP, not to the public
key (one client must not hold every visitor of the shop back); other keys and clients are not held back,
and ordinary storefront traffic is never charged (docs/ingest.md, Rate limits). Real broker and gateway."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from livemetrics import keys
from livemetrics.keys import KeyRegistry
from producers.gateway import events as gateway_events
from producers.gateway.app import create_gateway
from producers.gateway.ingest import parse_body
from tests.integration.test_gateway_keys import signed
from tests.support import factories as f
from tests.support.client_ips import fresh_client_ip
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration

SHOP = "https://shop.example"
RATE = 50  # events/s, burst 100: for keys and for client IPs


@pytest.fixture(scope="module")
def gw(kafka, clickhouse_dsn, tmp_path_factory):
    from tests.support.stack import module_settings

    s = module_settings(
        kafka,
        clickhouse_dsn,
        tmp_path_factory.mktemp("validation-cost"),
        browser_rate_per_s=RATE,
        client_ip_rate_per_s=RATE,
        trusted_proxies=["127.0.0.1"],  # each request names its client in X-Forwarded-For
    )
    registry = KeyRegistry(s).start()
    server = ThreadServer(create_gateway(s, registry)).start()
    try:
        yield {"settings": s, "registry": registry, "url": server.url}
    finally:
        server.stop()
        registry.stop()


def add_key(gw, **extra) -> str:
    presented, rec = keys.new_key("pk", f"seller-{uuid.uuid4().hex[:6]}", origins=[SHOP], **extra)
    keys.publish(gw["settings"], rec)
    wait_until(lambda: gw["registry"].record(rec.key_id) is not None, 15, what="key loaded")
    return presented


def client_ip() -> str:
    return fresh_client_ip()  # a fresh one per use (no shared bucket)


def post(gw, key: str, events: list[dict], ip: str) -> httpx.Response:
    h = {"Authorization": f"Bearer {key}", "User-Agent": f.CHROME, "X-Forwarded-For": ip, "Origin": SHOP}
    return httpx.post(f"{gw['url']}/v1/events", json={"events": events}, headers=h, timeout=30)


def charged(gw) -> dict[tuple[str, str], float]:
    """The gateway's validation-charge counters from its /metrics: (sample name, charged_to) -> value."""
    text = httpx.get(f"{gw['url']}/metrics", timeout=10).text
    return {
        (sample.name, sample.labels["charged_to"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("livemetrics_gateway_validation_charged")
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def grew(before: dict, after: dict, payer: str) -> tuple[float, float]:
    requests, events = (
        "livemetrics_gateway_validation_charged_total",
        "livemetrics_gateway_validation_charged_events_total",
    )
    return (
        after.get((requests, payer), 0) - before.get((requests, payer), 0),
        after.get((events, payer), 0) - before.get((events, payer), 0),
    )


def expensive() -> dict:
    """A valid page view whose strings are digit groups only: every group starts a window to check."""
    return f.page_view(page={"type": "other", "path": "/" + "1 " * 1000, "referrer": "1 " * 1000})


def test_expensive_events_cost_their_sender_room_and_no_one_else(gw):
    k1, k2 = add_key(gw), add_key(gw, rate_per_s=1000)
    ip1, ip2 = client_ip(), client_ip()
    batch = [expensive() for _ in range(60)]
    start = time.thread_time()
    parse_body(json.dumps({"events": batch}).encode())  # what this batch costs to validate here
    cost = time.thread_time() - start
    assert cost > 3 * 60 * gateway_events.VALIDATION_CPU_PER_EVENT_S, cost  # well past what 60 events pay

    before = charged(gw)
    assert post(gw, k1, batch, ip1).status_code == 202  # within both bursts: accepted, then charged
    requests, events = grew(before, charged(gw), "client_ip")
    assert requests == 1 and events > 60, (requests, events)  # counted, by who paid, never by which IP
    assert grew(before, charged(gw), "key") == (0, 0)
    r = post(gw, k2, [f.heartbeat()], ip1)  # another key, the same client
    assert r.status_code == 429 and r.json()["error"].startswith(f"client IP {ip1} is over"), r.text
    assert int(r.headers["Retry-After"]) >= 1
    # the same (public) key from another client: the shop's other visitors are not held back
    assert post(gw, k1, [f.heartbeat()], ip2).status_code == 202
    assert post(gw, k2, [f.heartbeat()], ip2).status_code == 202  # everyone else as before


def test_a_server_key_pays_for_its_own_expensive_requests(gw):
    kek = gw["settings"].key_encryption_key.get_secret_value()
    presented, rec = keys.new_server_key(f"seller-{uuid.uuid4().hex[:6]}", kek, rate_per_s=RATE)
    keys.publish(gw["settings"], rec)
    wait_until(lambda: gw["registry"].record(rec.key_id) is not None, 15, what="key loaded")

    def send(events: list[dict]) -> httpx.Response:
        body = json.dumps({"events": events}).encode()
        h = signed(presented, body)
        return httpx.post(f"{gw['url']}/v1/events", content=body, headers=h, timeout=30)

    before = charged(gw)
    assert send([expensive() for _ in range(60)]).status_code == 202  # within its burst: accepted, then charged
    assert grew(before, charged(gw), "key")[0] == 1
    r = send([f.heartbeat()])
    assert r.status_code == 429 and r.json()["error"].startswith(f"key {rec.key_id} is over its rate limit"), r.text


def test_ordinary_storefront_batches_are_never_charged(gw):
    key, ip = add_key(gw), client_ip()
    batch = [f.page_view("category", category=f"cat-{i}") for i in range(45)]
    for ev in batch:
        ev["page"]["title"] = "Schuhe für Herren – Größe 42 | Shop"
        ev["page"]["path"] = "/kategorie/b%C3%BCcher?page=2&q=red%20shoes"
    # two such requests fit the burst of 100 exactly as their 90 events say
    before = charged(gw)
    assert post(gw, key, batch, ip).status_code == 202
    assert post(gw, key, batch, ip).status_code == 202
    assert grew(before, charged(gw), "client_ip") == (0, 0) and grew(before, charged(gw), "key") == (0, 0)
