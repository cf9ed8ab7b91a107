"""Validation is charged to whoever sends it (H1 red team): a storefront's events take the gateway 10-50
us each, but events made expensive for the card check (long strings of "1 1 1 ...") took tens of ms each,
and every one counted as one event of the sender's rate: a copied browser key could keep a gateway process
busy for every seller. A request counts, before it is validated, as one event per DIGIT_GROUPS_PER_EVENT
digit groups (ASCII or not) when that is more than its events, paid by its client IP and its key as the
bytes of a large body are; a request counting more than a batch (500), whatever its key, is refused (413)
unvalidated. What validation still costs past that (the User-Agent header's digit groups) is charged after
the fact. Other keys and clients are not held back, and ordinary storefront traffic is never charged more
than its events (docs/ingest.md, Rate limits). Real broker and gateway."""

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


def expensive(digit: str = "1") -> dict:
    """A valid page view whose strings are digit groups only (2,000 of them): every group starts a window to
    check."""
    return f.page_view(page={"type": "other", "path": "/" + f"{digit} " * 1000, "referrer": f"{digit} " * 1000})


def body_of(events: list[dict]) -> bytes:
    return json.dumps({"events": events}, ensure_ascii=False).encode()


@pytest.mark.parametrize("digit", ["1", "\u0661"], ids=["ascii", "arabic_indic"])
def test_digit_groups_cost_their_sender_room_before_validation_and_no_one_else(gw, digit):
    k1, k2 = add_key(gw, rate_per_s=5), add_key(gw)  # k1: a burst of 10, which one request may exceed once
    ip1, ip2, ip3 = client_ip(), client_ip(), client_ip()
    batch = [expensive(digit) for _ in range(5)]  # 10,000 digit groups: 100 events' worth, the client's burst
    assert gateway_events.least_cost(body_of(batch), 500) == 100
    start = time.thread_time()
    parse_body(body_of(batch))  # what this batch costs to validate here
    cost = time.thread_time() - start
    assert cost > 3 * 5 * gateway_events.VALIDATION_CPU_PER_EVENT_S, cost  # well past what 5 events pay

    hundred = [f.heartbeat() for _ in range(100)]
    before = charged(gw)
    for _ in range(3):  # another client IP each time its refill (2 s) could have passed before the check below
        started = time.monotonic()
        assert post(gw, k1, batch, ip1).status_code == 202
        # Both buckets are empty now: 100 events need 2 s of the client's refill (50/s), 20 s of k1's (5/s).
        r = post(gw, k2, hundred, ip1)  # another key, the same client
        if r.status_code == 429 or time.monotonic() - started < 100 / RATE:
            break
        # a loaded machine (the refill could explain a 202): once more, with fresh buckets
        ip1, k1, k2 = client_ip(), add_key(gw, rate_per_s=5), add_key(gw)
    assert r.status_code == 429 and r.json()["error"].startswith(f"client IP {ip1} is over"), r.text
    # paid up front, by the client IP and by the key, as the bytes of a large body are: after the fact, only the
    # rest of a hundred and the User-Agent header's groups (less than one event each time)
    assert grew(before, charged(gw), "client_ip")[1] < 3 and grew(before, charged(gw), "key") == (0, 0)
    r = post(gw, k1, hundred, ip2)  # the same key from another client
    assert r.status_code == 429 and r.json()["error"].startswith("key ") and "over its rate limit" in r.text, r.text
    assert int(r.headers["Retry-After"]) >= 1
    # everyone else as before (ip2 spent its room on k1's refused request: the client's limit is taken first)
    assert post(gw, k2, hundred[:30], ip3).status_code == 202


def test_a_request_counting_past_what_one_request_may_is_refused_unvalidated_and_costs_no_room(gw):
    key, ip = add_key(gw), client_ip()
    batch = [expensive() for _ in range(60)]  # 120,000 digit groups: 1,200 events' worth
    before = charged(gw)
    r = post(gw, key, batch, ip)
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert "more than 500 events" in error and "per 100 digit groups" in error and "smaller requests" in error
    assert grew(before, charged(gw), "client_ip") == (0, 0) and grew(before, charged(gw), "key") == (0, 0)
    hundred = [f.heartbeat() for _ in range(100)]
    assert post(gw, key, hundred, ip).status_code == 202  # the key's and the client's whole bursts still there


def test_a_server_key_pays_for_its_own_digit_groups(gw):
    kek = gw["settings"].key_encryption_key.get_secret_value()
    # 5 events/s, a burst of 10, which one request may exceed once: 30 events need 6 s of its refill after it
    presented, rec = keys.new_server_key(f"seller-{uuid.uuid4().hex[:6]}", kek, rate_per_s=5)
    keys.publish(gw["settings"], rec)
    wait_until(lambda: gw["registry"].record(rec.key_id) is not None, 15, what="key loaded")

    def send(events: list[dict]) -> httpx.Response:
        body = json.dumps({"events": events}).encode()
        h = signed(presented, body)
        return httpx.post(f"{gw['url']}/v1/events", content=body, headers=h, timeout=30)

    assert send([expensive() for _ in range(4)]).status_code == 202  # 80 events' worth
    r = send([f.heartbeat() for _ in range(30)])
    assert r.status_code == 429 and r.json()["error"].startswith(f"key {rec.key_id} is over its rate limit"), r.text
    assert "per 100 digit groups" not in r.text  # 30 events count as 30: the hint names digit groups only then


def test_a_key_with_room_for_a_batch_pays_digit_groups_up_front_too(gw):
    # A key with room for a whole batch has a clean body decoded at once; any other body is counted before the
    # card check reads it, as a key short of room is: before, it was validated first and charged after the fact,
    # so one request cost what its body held (~2 s of CPU for 1 MiB of "1 1 1 ..."), whatever the key's rate.
    kek = gw["settings"].key_encryption_key.get_secret_value()
    presented, rec = keys.new_server_key(f"seller-{uuid.uuid4().hex[:6]}", kek, rate_per_s=250)  # burst 500
    keys.publish(gw["settings"], rec)
    wait_until(lambda: gw["registry"].record(rec.key_id) is not None, 15, what="key loaded")

    def send(events: list[dict]) -> httpx.Response:
        body = json.dumps({"events": events}).encode()
        return httpx.post(f"{gw['url']}/v1/events", content=body, headers=signed(presented, body), timeout=30)

    before = charged(gw)
    r = send([expensive() for _ in range(60)])  # 120,000 digit groups: 1,200 events' worth
    assert r.status_code == 413 and "more than 500 events" in r.json()["error"], r.text
    assert grew(before, charged(gw), "key") == (0, 0)
    assert send([expensive() for _ in range(20)]).status_code == 202  # 400 events' worth, paid before validation
    # After the fact, only the User-Agent header's groups: the 400 were taken before (validated at once, ~380 were
    # charged here). (The key's room left is not asserted: it refills 250 a second.)
    assert grew(before, charged(gw), "key")[1] < 1


def test_one_request_counts_at_most_a_batch_whatever_its_keys_rate(gw):
    # A key's burst (2 x its rate) let one request count more than a batch: a server key at the default
    # 20,000/s could send 1 MiB of digit groups (~5,000 events' worth), ~2 s of this process's loop, every
    # seller's requests waiting behind it. Now any key's request counts at most a batch: ~125 ms of the loop.
    kek = gw["settings"].key_encryption_key.get_secret_value()
    presented, rec = keys.new_server_key(f"seller-{uuid.uuid4().hex[:6]}", kek, rate_per_s=20_000)
    keys.publish(gw["settings"], rec)
    wait_until(lambda: gw["registry"].record(rec.key_id) is not None, 15, what="key loaded")
    body = json.dumps({"events": [expensive() for _ in range(30)]}).encode()  # 600 events' worth
    before = charged(gw)
    r = httpx.post(f"{gw['url']}/v1/events", content=body, headers=signed(presented, body), timeout=30)
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert "more than 500 events" in error and "per 100 digit groups" in error and "smaller requests" in error
    assert grew(before, charged(gw), "key") == (0, 0)
    half = json.dumps({"events": [expensive() for _ in range(20)]}).encode()  # 400 events' worth: a batch's
    assert (
        httpx.post(f"{gw['url']}/v1/events", content=half, headers=signed(presented, half), timeout=30).status_code
        == 202
    )


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
