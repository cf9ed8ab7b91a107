"""A gateway that has not read its keys yet (started while Kafka is away) answers a key it does not know
503 with Retry-After, saying so, not 401 "unknown key": the trackers and the SDK take a 401 as final (the
shop's valid key refused, its events dropped). Once the keys are read, an unknown key is 401 as before."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from livemetrics.settings import Settings
from producers.gateway.app import create_gateway
from producers.gateway.auth import Authenticator
from producers.gateway.ip_salts import LocalSalts
from producers.gateway.topic_limits import TopicLimits
from tests.support import factories as f
from tests.support.unread_keys import UnreadKeys
from tests.unit.producers.test_gateway_events_route import FakeDelivery


def answers(ready: bool) -> list[httpx.Response]:
    app = create_gateway(Settings(topic_prefix="unread."))
    registry = UnreadKeys()
    registry.ready = ready
    app.state.registry = registry
    app.state.auth = Authenticator(registry, 300, dev_mode=True)
    app.state.delivery = FakeDelivery()
    app.state.ip_salts = LocalSalts()
    app.state.topic_limits = TopicLimits(Settings())
    body = json.dumps({"events": [f.page_view()]}).encode()
    signed = {"X-Livemetrics-Key-Id": "k9", "X-Livemetrics-Timestamp": "0", "X-Livemetrics-Signature": "v2=00"}

    async def scenario():
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            browser = await client.post("/v1/events", content=body, headers={"Authorization": "Bearer lm_pk_k1_secret"})
            signed["X-Livemetrics-Timestamp"] = str(int(time.time()))
            server = await client.post("/v1/events", content=body, headers=signed)
            stripe = await client.post(
                "/v1/providers/stripe/k7", content=b"{}", headers={"Stripe-Signature": "t=1,v1=0"}
            )
            return [browser, server, stripe]

    return asyncio.run(scenario())


def test_keys_not_read_yet_is_503_with_retry_after_not_unknown_key():
    browser, server, stripe = answers(ready=False)
    for r in (browser, server, stripe):
        assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
    assert browser.json() == {
        "error": "the gateway has not read its keys yet (Kafka unreachable, or starting): nothing was accepted, "
        "retry later",
        "accepted": 0,
    }
    assert server.json() == browser.json()
    browser, server, stripe = answers(ready=True)  # read: an unknown key is unknown
    assert [r.status_code for r in (browser, server, stripe)] == [401, 401, 404]
    assert browser.json()["error"] == "unknown, revoked or wrong key"
