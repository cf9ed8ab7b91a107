"""Keys against a real gateway and broker: signed server keys (wrong, missing, stale, replayed),
tenancy, backfill, rate limits, body limit, the SDK, and card data never reaching Kafka."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from contextlib import contextmanager

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings

from livemetrics import keys
from livemetrics.contract import decode
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from producers.sdk import AsyncClient, Client, KeyRefused
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until
from tests.support.stack import module_settings, new_seller
from tests.unit.producers.test_no_card_data_leaves import card_numbers

pytestmark = pytest.mark.integration


@contextmanager
def _gateway(settings, add_seller):
    """The sellers' keys in Kafka, a key registry that has read them, and a gateway serving them."""
    kek = settings.key_encryption_key.get_secret_value()
    a_browser, _ = add_seller(settings, "seller-a")
    b_browser, _ = add_seller(settings, "seller-b")
    a_server, a_rec = keys.new_server_key("seller-a", kek)
    b_server, b_rec = keys.new_server_key("seller-b", kek)
    slow, slow_rec = keys.new_key("pk", "seller-a", rate_per_s=5, origins=[f.SHOP_ORIGIN])
    for rec in (a_rec, b_rec, slow_rec):
        keys.publish(settings, rec)
    registry = KeyRegistry(settings).start()
    wait_until(lambda: registry.record(slow_rec.key_id), 10, what="keys loaded")
    server = ThreadServer(create_gateway(settings, registry)).start()
    try:
        yield {
            "url": server.url,
            "a_browser": a_browser,
            "b_browser": b_browser,
            "a_server": a_server,
            "b_server": b_server,
            "slow": slow,
            "settings": settings,
        }
    finally:
        server.stop()
        registry.stop()


@pytest.fixture
def gw(settings, add_seller):
    """A gateway with topics of its own: for the tests that check what reached a topic (all of it)."""
    with _gateway(settings, add_seller) as g:
        yield g


@pytest.fixture(scope="module")
def shared_gw(kafka, clickhouse_dsn, tmp_path_factory):
    """One gateway for the tests that check only its answers (nothing they read is written by another test):
    its keys, registry and start took ~2.5 s of each such test at load 5-9."""
    with _gateway(module_settings(kafka, clickhouse_dsn, tmp_path_factory.mktemp("keys")), new_seller) as g:
        yield g


def signed(key: str, body: bytes, ts: str | None = None, **extra) -> dict[str, str]:
    _, key_id, secret = keys.split_key(key)
    ts = ts or f"{time.time():.3f}"
    backfill = extra.get("X-Livemetrics-Backfill") == "1"
    return {
        "X-Livemetrics-Key-Id": key_id,
        "X-Livemetrics-Timestamp": ts,
        "X-Livemetrics-Signature": keys.sign(secret, ts, body, backfill),
        "User-Agent": f.CHROME,
        **extra,
    }


def post(url: str, body: bytes, headers: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/events", content=body, headers=headers, timeout=20)


def test_signed_request_is_accepted_and_stamped(gw):
    body = json.dumps({"events": [f.payment_failed(), f.page_view()]}).encode()
    r = post(gw["url"], body, signed(gw["a_server"], body))
    assert r.status_code == 202 and r.json() == {"accepted": 2, "rejected": []}
    pay = decode(read_topic(gw["settings"], "payment-events", expect=1)[0].value())
    page = decode(read_topic(gw["settings"], "page-events", expect=1)[0].value())
    assert pay.seller_id == page.seller_id == "seller-a"
    assert pay.ip == "127.0.0.1" and page.ip is None and page.ip_hash and page.ip_hash != "127.0.0.1"
    assert pay.browser == "Chrome" and not pay.is_bot and not pay.backfill


def test_wrong_signature(shared_gw):
    body = json.dumps(f.page_view()).encode()
    h = signed(shared_gw["a_server"], body)
    h["X-Livemetrics-Signature"] = "v2=" + "0" * 64
    r = post(shared_gw["url"], body, h)
    assert r.status_code == 401 and "wrong signature" in r.json()["error"]


def test_body_changed_after_signing(shared_gw):
    body = json.dumps(f.page_view()).encode()
    r = post(shared_gw["url"], body.replace(b"home", b"cart"), signed(shared_gw["a_server"], body))
    assert r.status_code == 401 and "wrong signature" in r.json()["error"]


def test_missing_signature(shared_gw):
    body = json.dumps(f.page_view()).encode()
    h = signed(shared_gw["a_server"], body)
    del h["X-Livemetrics-Signature"]
    r = post(shared_gw["url"], body, h)
    assert r.status_code == 401 and "X-Livemetrics-Signature" in r.json()["error"]


def test_stale_signature(shared_gw):
    body = json.dumps(f.page_view()).encode()
    r = post(shared_gw["url"], body, signed(shared_gw["a_server"], body, ts=str(int(time.time()) - 301)))
    assert r.status_code == 401 and "stale signature" in r.json()["error"]
    r = post(shared_gw["url"], body, signed(shared_gw["a_server"], body, ts=str(int(time.time()) + 400)))
    assert r.status_code == 401 and "stale signature" in r.json()["error"]


def test_replayed_signature(shared_gw):
    body = json.dumps(f.page_view()).encode()
    h = signed(shared_gw["a_server"], body)
    assert post(shared_gw["url"], body, h).status_code == 202
    r = post(shared_gw["url"], body, h)
    assert r.status_code == 401 and "replayed signature" in r.json()["error"]


def test_server_key_is_never_accepted_as_a_bearer_token(shared_gw):
    r = post(shared_gw["url"], json.dumps(f.page_view()).encode(), {"Authorization": f"Bearer {shared_gw['a_server']}"})
    assert r.status_code == 401 and "must sign" in r.json()["error"]


def test_one_sellers_keys_never_write_as_another(gw):
    # A body naming another seller is refused, for browser and server keys alike.
    ev = f.page_view(seller_id="seller-b")
    r = post(gw["url"], json.dumps(ev).encode(), f.browser_headers(gw["a_browser"]))
    assert r.status_code == 422 and "`seller_id` 'seller-b' does not match the key's seller" in r.json()["error"]
    body = json.dumps({"events": [f.page_view(seller_id="seller-b"), f.page_view(seller_id="seller-a")]}).encode()
    r = post(gw["url"], body, signed(gw["a_server"], body))
    assert r.status_code == 202 and r.json()["accepted"] == 1 and r.json()["rejected"][0]["index"] == 0
    # seller-b's key id with seller-a's secret does not verify.
    _, b_id, _ = keys.split_key(gw["b_server"])
    _, _, a_secret = keys.split_key(gw["a_server"])
    forged = f"lm_sk_{b_id}_{a_secret}"
    body = json.dumps(f.page_view()).encode()
    assert post(gw["url"], body, signed(forged, body)).status_code == 401
    events = [decode(m.value()) for m in read_topic(gw["settings"], "page-events", expect=1)]
    assert [e.seller_id for e in events] == ["seller-a"]


def test_the_signature_covers_the_backfill_header(shared_gw):
    body = json.dumps(f.page_view(ts=int(time.time() * 1000) - 5 * 86_400_000)).encode()
    added = {**signed(shared_gw["a_server"], body), "X-Livemetrics-Backfill": "1"}  # a relay adds it to a live request
    r = post(shared_gw["url"], body, added)
    assert r.status_code == 401 and "wrong signature" in r.json()["error"] and "<backfill>" in r.json()["error"]
    dropped = signed(shared_gw["a_server"], body, **{"X-Livemetrics-Backfill": "1"})
    del dropped["X-Livemetrics-Backfill"]
    assert post(shared_gw["url"], body, dropped).status_code == 401


def test_old_v1_signatures_are_refused_with_a_clear_message(shared_gw):
    body = json.dumps(f.page_view()).encode()
    _, key_id, secret = keys.split_key(shared_gw["a_server"])
    ts = f"{time.time():.3f}"
    v1 = "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    h = {"X-Livemetrics-Key-Id": key_id, "X-Livemetrics-Timestamp": ts, "X-Livemetrics-Signature": v1}
    r = post(shared_gw["url"], body, h)
    assert r.status_code == 401
    assert (
        "v1 signatures are no longer accepted" in r.json()["error"]
        and "upgrade the livemetrics SDK" in r.json()["error"]
    )


def test_a_full_replay_cache_answers_503_and_still_refuses_replays(make_settings, add_seller):
    s = make_settings(replay_cache_max=2)
    server_key, rec = keys.new_server_key("seller-a", s.key_encryption_key.get_secret_value())
    keys.publish(s, rec)
    registry = KeyRegistry(s).start()
    wait_until(lambda: registry.record(rec.key_id), 10, what="keys loaded")
    server = ThreadServer(create_gateway(s, registry)).start()
    try:
        bodies = [json.dumps(f.page_view()).encode() for _ in range(3)]
        first = signed(server_key, bodies[0])
        assert post(server.url, bodies[0], first).status_code == 202
        assert post(server.url, bodies[1], signed(server_key, bodies[1])).status_code == 202
        r = post(server.url, bodies[2], signed(server_key, bodies[2]))
        assert r.status_code == 503 and r.json()["accepted"] == 0 and "retry in" in r.json()["error"]
        assert 1 <= int(r.headers["Retry-After"]) <= 2 * s.signature_tolerance_s
        r = post(server.url, bodies[0], first)  # never forgotten early to make room
        assert r.status_code == 401 and "replayed signature" in r.json()["error"]
    finally:
        server.stop()
        registry.stop()


def test_backfill_only_from_server_keys(gw):
    ev = f.page_view(ts=int(time.time() * 1000) - 5 * 86_400_000)
    body = json.dumps(ev).encode()
    r = post(gw["url"], body, f.browser_headers(gw["a_browser"], **{"X-Livemetrics-Backfill": "1"}))
    assert r.status_code == 403 and "server key" in r.json()["error"]
    r = post(gw["url"], body, signed(gw["a_server"], body, **{"X-Livemetrics-Backfill": "1"}))
    assert r.status_code == 202
    got = decode(read_topic(gw["settings"], "page-events", expect=1)[0].value())
    assert got.event_id == ev["event_id"] and got.backfill is True


def test_rate_limit_answers_429_with_retry_after(shared_gw):
    body = json.dumps({"events": [f.heartbeat() for _ in range(10)]}).encode()
    h = f.browser_headers(shared_gw["slow"])
    assert post(shared_gw["url"], body, h).status_code == 202  # a burst of 2 s x 5/s
    r = post(shared_gw["url"], body, h)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "rate limit" in r.json()["error"]


def test_body_limit_counts_bytes_read_without_content_length(shared_gw):
    def chunks():
        for _ in range(20):
            yield b" " * 65_536  # 1.25 MiB of whitespace, streamed chunked

    r = httpx.post(
        f"{shared_gw['url']}/v1/events", content=chunks(), headers=f.browser_headers(shared_gw["a_browser"]), timeout=20
    )
    assert r.status_code == 413 and "1048576" in r.json()["error"]


def test_unknown_and_missing_keys(shared_gw):
    body = json.dumps(f.page_view()).encode()
    assert post(shared_gw["url"], body, {}).status_code == 401
    r = post(shared_gw["url"], body, {"Authorization": "Bearer lm_pk_nope_nope"})
    assert r.status_code == 401 and "unknown" in r.json()["error"]


def test_cors_preflight_for_browser_keys(shared_gw):
    r = httpx.options(
        f"{shared_gw['url']}/v1/events",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] in ("*", "https://shop.example")


def test_sdk_sync_and_async(gw):
    with Client(gw["url"], gw["a_server"], timeout=5) as lm:
        res = lm.payment_failed(
            "sess-sdk-0001",
            method="card",
            amount=12.5,
            currency="EUR",
            order_id="o-1",
            error_code="card_declined",
            error_message="declined",
            customer=f.customer(),
        )
        assert (res.accepted, res.rejected, res.failed) == (1, [], 0)
        lm.add(f.page_view(session_id="sess-sdk-0001"))
        lm.add(f.page_view(type="nope"))
        res = lm.flush()
        assert res.accepted == 1 and "unknown event type 'nope'" in res.rejected[0]["error"]

    async def run():
        async with AsyncClient(gw["url"], gw["a_server"], timeout=5, backfill=True) as lm:
            return await lm.send([f.page_view(session_id="sess-sdk-0002") for _ in range(3)])

    assert asyncio.run(run()).accepted == 3
    with pytest.raises(KeyRefused):
        Client(gw["url"], gw["b_browser"].replace(gw["b_browser"][-5:], "xxxxx")).send([f.page_view()])
    pages = [decode(m.value()) for m in read_topic(gw["settings"], "page-events", expect=4)]
    assert sorted(p.backfill for p in pages) == [False, True, True, True]


def test_sdk_gives_up_within_its_timeout(shared_gw):
    started = time.monotonic()
    res = Client("http://127.0.0.1:9", shared_gw["a_server"], timeout=0.5).send([f.page_view()])
    assert res.failed == 1 and time.monotonic() - started < 1.5


def test_no_card_number_reaches_kafka(gw):
    posted: list[str] = []

    @hsettings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(card=card_numbers())
    def send_one(card):
        digits, written = card
        bad = f.payment_failed(payment_overrides={"details": {"note": f"paid with {written}"}})
        good = f.payment_failed()
        r = post(gw["url"], json.dumps({"events": [bad, good]}).encode(), f.browser_headers(gw["a_browser"]))
        assert r.status_code == 202 and r.json()["accepted"] == 1
        assert r.json()["rejected"][0]["index"] == 0 and "card data" in r.json()["rejected"][0]["error"]
        posted.append(digits)

    send_one()
    raw = read_topic(gw["settings"], "payment-events", expect=len(posted))
    dead = read_topic(gw["settings"], "dead-letter", expect=len(posted))
    assert len(raw) == len(dead) == len(posted)
    everything = "".join(m.value().decode() for m in raw + dead).replace(" ", "").replace("-", "")
    assert not [d for d in posted if d in everything]
    assert {json.loads(m.value())["reason"] for m in dead} == {"card_data"}
