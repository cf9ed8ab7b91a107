"""A browser client short of room for a full batch (the per-IP limit) has its body split and counted before it
is validated, as a key short of room does: a refusal costs no validation. Before, only the key's room was
asked: with a key that had room for a batch (a rate of 250/s or more), a client over its per-IP limit had
every body validated first (up to ~100 ms of CPU for a MiB of events that are each refused, uncharged), so
one address sending such bodies as fast as its line allowed kept a gateway core busy, refused all along."""

from __future__ import annotations

import asyncio
import json

import httpx

import producers.gateway.events as events_module
from livemetrics.keys import KeyRecord
from livemetrics.settings import Settings
from producers.gateway.app import create_gateway
from producers.gateway.auth import Authenticator
from producers.gateway.ip_salts import LocalSalts
from producers.gateway.topic_limits import TopicLimits
from tests.support import factories as f
from tests.unit.producers.test_gateway_events_route import FakeDelivery

WIDE = "lm_pk_k1_secret"


class Registry:
    ready = True
    records = {
        WIDE: KeyRecord(key_id="k1", kind="browser", seller_id="s", hash="", created_at=0, rate_per_s=1000),
    }

    def authenticate(self, presented, kinds):
        return self.records.get(presented)

    def server_secret(self, key_id):
        return None


def gateway():
    app = create_gateway(Settings(topic_prefix="unparsed.", client_ip_rate_per_s=10))
    app.state.registry = Registry()
    app.state.auth = Authenticator(app.state.registry, 300, dev_mode=True)
    app.state.delivery = FakeDelivery()
    app.state.ip_salts = LocalSalts()
    app.state.topic_limits = TopicLimits(Settings())
    return app


def test_a_request_over_its_clients_limit_is_refused_unvalidated(monkeypatch):
    validated = []
    real = events_module.parse_body
    monkeypatch.setattr(events_module, "parse_body", lambda *a: validated.append(len(a)) or real(*a))
    # a MiB of events that are each refused: ~100 ms to validate
    costly = json.dumps({"events": [{"pad": "x" * 2000}] * 500}).encode()
    fine = json.dumps({"events": [f.heartbeat() for _ in range(20)]}).encode()

    async def scenario():
        transport = httpx.ASGITransport(app=gateway(), client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:

            async def post(body: bytes) -> httpx.Response:
                return await client.post("/v1/events", content=body, headers={"Authorization": f"Bearer {WIDE}"})

            return [await post(fine)] + [await post(costly) for _ in range(5)]  # the client's burst, then over it

    answers = asyncio.run(scenario())
    assert [r.status_code for r in answers] == [202] + [429] * 5
    assert validated == [3]  # only the accepted body was validated (split and pre-scanned first: body, raws, suspects)
    error = answers[1].json()["error"]
    assert error.startswith("client IP 203.0.113.9 is over the per-client limit of browser-key traffic (10 events/s)")
    assert int(answers[1].headers["Retry-After"]) >= 1


NARROW = "lm_pk_k2_secret"
Registry.records[NARROW] = KeyRecord(key_id="k2", kind="browser", seller_id="s", hash="", created_at=0, rate_per_s=10)


def test_a_request_its_limit_cannot_take_is_refused_unsplit(monkeypatch):
    """A request pays at least one event per 4,096 bytes of body: when its client (per-IP limit) or its key
    has less room than that, it is refused before its body is split. Before, every refused body was split
    first (2-22 ms of CPU a MiB, uncharged) to count its events for a refusal already certain."""
    touched = []
    for name in ("split_body", "parse_body"):
        real = getattr(events_module, name)
        monkeypatch.setattr(events_module, name, lambda *a, _n=name, _r=real: touched.append(_n) or _r(*a))
    big = json.dumps({"events": [{"pad": "x" * 2000}] * 500}).encode()  # ~1 MB: counts as at least 245 events
    fine = json.dumps({"events": [f.heartbeat() for _ in range(20)]}).encode()

    async def scenario(key: str, client_rate: int) -> list[httpx.Response]:
        app = create_gateway(Settings(topic_prefix="unsplit.", client_ip_rate_per_s=client_rate))
        app.state.registry = Registry()
        app.state.auth = Authenticator(app.state.registry, 300, dev_mode=True)
        app.state.delivery = FakeDelivery()
        app.state.ip_salts = LocalSalts()
        app.state.topic_limits = TopicLimits(Settings())
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:

            async def post(body: bytes) -> httpx.Response:
                return await client.post("/v1/events", content=body, headers={"Authorization": f"Bearer {key}"})

            first = await post(fine)  # the bucket's burst (20), spent
            touched.clear()
            return [first] + [await post(body) for body in (big, big, fine)]

    for key, client_rate, over in [(WIDE, 10, "client IP 203.0.113.9"), (NARROW, 0, "key k2")]:
        answers = asyncio.run(scenario(key, client_rate))
        assert [r.status_code for r in answers] == [202, 429, 429, 429], over
        assert touched == [], (over, touched)  # nothing split nor parsed for any of the refusals
        error = answers[1].json()["error"]
        assert error.startswith(over) and f"counts as {len(big) // 4096} events" in error, error
        assert int(answers[1].headers["Retry-After"]) >= len(big) // 4096 // 10 and answers[1].json()["accepted"] == 0
        assert "counts as" not in answers[3].json()["error"] and int(answers[3].headers["Retry-After"]) >= 1


class Shedding:
    """The overload policy (overload.Shedder) while it refuses seller "s": its interface, its answers."""

    enabled = True

    def __init__(self):
        self.counted: list[int] = []

    def refusing(self, seller: str) -> bool:
        return seller == "s"

    def admit(self, seller: str, n: int, now: float) -> int:
        self.counted.append(n)
        return 7 if seller == "s" else 0

    def why(self, seller: str, wait: int) -> str:
        return f"live processing is behind and {seller} sends far more than its share"


def test_a_seller_refused_for_overload_is_refused_unsplit(monkeypatch):
    """The overload policy refuses a seller before its body is split, counting its `"event_id"`s (or its
    bytes' worth); before, each refused body was split to count its events."""
    touched = []
    for name in ("split_body", "parse_body"):
        real = getattr(events_module, name)
        monkeypatch.setattr(events_module, name, lambda *a, _n=name, _r=real: touched.append(_n) or _r(*a))
    app = gateway()
    shedding = Shedding()
    for endpoint in (app.events_endpoint, next(r for r in app.routes if getattr(r, "path", "") == "/v1/events").app):
        endpoint.shedder = shedding
    batch = json.dumps({"events": [f.page_view() for _ in range(300)]}).encode()

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post("/v1/events", content=batch, headers={"Authorization": f"Bearer {WIDE}"})

    answer = asyncio.run(scenario())
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7" and answer.json()["accepted"] == 0
    assert "far more than its share" in answer.json()["error"]
    assert touched == [] and shedding.counted == [300]
