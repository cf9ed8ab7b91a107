"""The livemetrics-sdk distribution (producers/sdk-python) against a real gateway and the shared broker:
a signed send is accepted and stamped, backfill, refused keys raise with the gateway's words, and a retry
after 429 sends the same event ids, each reaching Kafka once."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from livemetrics_sdk import AsyncClient, Client, KeyRefused, build

from livemetrics import keys
from livemetrics.contract import decode
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def gw(settings):
    kek = settings.key_encryption_key.get_secret_value()
    server, server_rec = keys.new_server_key("seller-a", kek)
    slow, slow_rec = keys.new_key("pk", "seller-a", rate_per_s=5, origins=[f.SHOP_ORIGIN])
    for rec in (server_rec, slow_rec):
        keys.publish(settings, rec)
    registry = KeyRegistry(settings).start()
    wait_until(lambda: registry.record(server_rec.key_id) and registry.record(slow_rec.key_id), 10, what="keys loaded")
    app = ThreadServer(create_gateway(settings, registry)).start()
    yield {"url": app.url, "server": server, "slow": slow, "settings": settings}
    app.stop()
    registry.stop()


def kafka_events(settings, topic: str, expect: int) -> list:
    return [decode(m.value()) for m in read_topic(settings, topic, expect=expect)]


class Recording(httpx.HTTPTransport):
    """The real HTTP transport, noting each request's body, when it was sent and the answer on the way."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bytes, int]] = []
        self.sent_at: list[float] = []
        self.retry_after: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(time.monotonic())
        resp = super().handle_request(request)
        self.seen.append((request.read(), resp.status_code))
        self.retry_after.append(resp.headers.get("Retry-After"))
        return resp


def test_a_signed_send_is_accepted_and_stamped(gw):
    failure = build.payment(
        "payment_failed",
        "sess-sdkpy-01",
        method="card",
        amount="39.90",
        currency="EUR",
        order_id="o-1",
        error_code="card_declined",
        customer=f.customer(),
    )
    with Client(gw["url"], gw["server"], timeout=10) as lm:
        res = lm.send([failure, f.page_view(session_id="sess-sdkpy-01"), f.page_view(type="nope")])
    assert (res.accepted, res.failed, res.attempts) == (2, 0, 1)
    assert res.rejected[0]["index"] == 2 and "unknown event type 'nope'" in res.rejected[0]["error"]
    pay = kafka_events(gw["settings"], "payment-events", 1)[0]
    page = kafka_events(gw["settings"], "page-events", 1)[0]
    assert pay.event_id == failure["event_id"] and str(pay.payment.amount) == "39.90"
    assert pay.seller_id == page.seller_id == "seller-a" and pay.source == page.source == "server"
    assert not pay.backfill and not page.backfill
    # the SDK's User-Agent is no crawler's: a bot flag would mark the customer's whole session as a bot
    assert not pay.is_bot and not page.is_bot and pay.user_agent.startswith("livemetrics-sdk/")


def test_backfill_sync_and_async(gw):
    async def send_async():
        async with AsyncClient(gw["url"], gw["server"], timeout=10, backfill=True) as lm:
            return await lm.send([f.page_view(session_id="sess-sdkpy-02") for _ in range(3)])

    assert asyncio.run(send_async()).accepted == 3
    with Client(gw["url"], gw["server"], timeout=10) as lm:
        assert lm.send([f.page_view(session_id="sess-sdkpy-03")], backfill=True).accepted == 1
        assert lm.page_view("sess-sdkpy-04", {"type": "home"}).accepted == 1
    pages = kafka_events(gw["settings"], "page-events", 5)
    assert sorted((p.session_id, p.backfill) for p in pages) == [("sess-sdkpy-02", True)] * 3 + [
        ("sess-sdkpy-03", True),
        ("sess-sdkpy-04", False),
    ]


def test_refused_keys_raise_with_the_gateways_words(gw):
    wrong_secret = gw["server"][:-4] + "xxxx"
    with pytest.raises(KeyRefused, match="answered 401: .*wrong signature") as e:
        Client(gw["url"], wrong_secret).send([f.page_view()])
    assert e.value.status == 401
    with pytest.raises(KeyRefused, match="answered 401: .*unknown"):
        Client(gw["url"], "lm_sk_nosuchkey_secret").send([f.page_view()])
    with pytest.raises(KeyRefused, match="answered 403: .*origin"):  # a browser key from no page at all
        Client(gw["url"], gw["slow"]).send([f.page_view()])
    with pytest.raises(ValueError, match="backfill needs a server key"):
        Client(gw["url"], gw["slow"], backfill=True)
    assert read_topic(gw["settings"], "page-events", expect=1, timeout=1.0) == []


def test_a_retry_after_429_honours_retry_after_and_keeps_the_event_ids(gw):
    burst = json.dumps({"events": [f.heartbeat() for _ in range(10)]}).encode()  # the key's 2 s burst at 5/s
    r = httpx.post(f"{gw['url']}/v1/events", content=burst, headers=f.browser_headers(gw["slow"]), timeout=10)
    assert r.status_code == 202
    transport = Recording()
    events = [f.heartbeat(session_id="sess-sdkpy-05") for _ in range(3)]
    with Client(gw["url"], gw["slow"], timeout=15, origin=f.SHOP_ORIGIN, transport=transport) as lm:
        res = lm.send(events)
    assert (res.accepted, res.rejected, res.failed) == (3, [], 0)
    statuses = [status for _, status in transport.seen]
    assert statuses[0] == 429 and statuses[-1] == 202 and res.attempts == len(statuses) >= 2
    for i, status in enumerate(statuses[:-1]):  # never sooner than the gateway asked
        assert status == 429 and transport.sent_at[i + 1] - transport.sent_at[i] >= int(transport.retry_after[i])
    sent_ids = {tuple(e["event_id"] for e in json.loads(body)["events"]) for body, _ in transport.seen}
    assert sent_ids == {tuple(e["event_id"] for e in events)}  # every try sent the same events
    got = [e.event_id for e in kafka_events(gw["settings"], "page-events", 13) if e.session_id == "sess-sdkpy-05"]
    assert sorted(got) == sorted(e["event_id"] for e in events)


def test_a_retry_after_503_sends_the_same_events_once_the_gateway_has_room(make_settings):
    # A gateway that remembers one signature for 2 x 3 s: a second signed request within that window gets
    # 503 (it would rather refuse than forget a signature early) with a Retry-After of a few seconds.
    s = make_settings(replay_cache_max=1, signature_tolerance_s=3)
    server, rec = keys.new_server_key("seller-a", s.key_encryption_key.get_secret_value())
    keys.publish(s, rec)
    registry = KeyRegistry(s).start()
    wait_until(lambda: registry.record(rec.key_id), 10, what="keys loaded")
    app = ThreadServer(create_gateway(s, registry)).start()
    transport = Recording()
    try:
        with Client(app.url, server, timeout=15, transport=transport) as lm:
            first = lm.send([f.page_view(session_id="sess-sdkpy-06")])
            second = [f.page_view(session_id="sess-sdkpy-07") for _ in range(2)]
            res = lm.send(second)
    finally:
        app.stop()
        registry.stop()
    assert first.accepted == 1 and (res.accepted, res.failed) == (2, 0)
    statuses = [status for _, status in transport.seen]
    assert statuses[0] == 202 and 503 in statuses[1:-1] and statuses[-1] == 202
    assert len({body for body, _ in transport.seen[1:]}) == 1  # every try of the second call: the same body
    got = sorted(e.event_id for e in kafka_events(s, "page-events", 3) if e.session_id == "sess-sdkpy-07")
    assert got == sorted(e["event_id"] for e in second)


def test_network_errors_are_retried_until_the_timeout(gw):
    res = Client("http://127.0.0.1:9", gw["server"], timeout=0.5).send([f.page_view()])
    assert res.failed == 1 and res.attempts >= 2 and "ConnectError" in res.error
