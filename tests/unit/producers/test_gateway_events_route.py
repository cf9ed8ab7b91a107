"""``POST /v1/events`` served before FastAPI's middleware stack answers exactly as the same endpoint
behind the whole stack (the app mounted under a prefix): statuses, bodies, headers, CORS."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from livemetrics.keys import KeyRecord
from livemetrics.settings import Settings
from producers.gateway.app import create_gateway
from producers.gateway.auth import Authenticator
from producers.gateway.ip_salts import LocalSalts
from producers.gateway.topic_limits import TopicLimits
from tests.support import factories as f

KEY = "lm_pk_k1_secret"
SLOW = "lm_pk_k2_secret"


class FakeRegistry:
    ready = True
    records = {
        KEY: KeyRecord(key_id="k1", kind="browser", seller_id="seller-a", hash="", created_at=0),
        SLOW: KeyRecord(key_id="k2", kind="browser", seller_id="seller-a", hash="", created_at=0, rate_per_s=1),
    }

    def authenticate(self, presented, kinds):
        return self.records.get(presented)

    def server_secret(self, key_id):
        return None


class FakeDelivery:
    def __init__(self):
        self.sent, self.dead = [], []

    async def send(self, records, count):
        self.sent.extend(records)

    def send_soon(self, topic, key, value):
        self.dead.append((topic, value))


def gateway(origins: list[str]):
    app = create_gateway(Settings(allowed_origins=origins, topic_prefix="route."))
    app.state.registry = FakeRegistry()
    app.state.auth = Authenticator(app.state.registry, 300, dev_mode=True)  # these keys list no origins
    app.state.delivery = FakeDelivery()
    app.state.ip_salts = LocalSalts()  # what the lifespan would read from Kafka
    app.state.topic_limits = TopicLimits(Settings())  # no limits read: nothing refused for size
    return app


def requests() -> list[tuple[dict, bytes]]:
    ok = json.dumps({"events": [f.page_view(), f.page_view(type="teleport"), f.payment_failed()]}).encode()
    auth = {"Authorization": f"Bearer {KEY}", "User-Agent": f.CHROME, "Content-Type": "application/json"}
    return [
        (auth, ok),
        ({**auth, "Origin": "https://shop.example"}, ok),
        ({**auth, "Origin": "https://evil.example"}, ok),
        ({"User-Agent": f.CHROME}, ok),
        ({"Authorization": "Bearer lm_pk_zz_nope"}, ok),
        (auth, b'{"events": [{"type": "page_view",'),
        (auth, json.dumps({"events": [f.page_view(type="teleport")]}).encode()),
        (auth, b"x" * (1024 * 1024 + 1)),
        (auth, json.dumps({"events": [f.page_view()] * 501}).encode()),
        ({**auth, "X-Livemetrics-Backfill": "1"}, ok),
        ({"X-Livemetrics-Key": SLOW}, ok),
        ({"X-Livemetrics-Key": SLOW, "Origin": "https://shop.example"}, ok),  # over its rate: 429
    ]


async def answers(app, url: str) -> list[tuple[int, dict, list]]:
    out = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 5000)), base_url="http://gw"
    ) as client:
        for headers, body in requests():
            r = await client.post(url, content=body, headers=headers)
            out.append((r.status_code, r.json(), sorted(r.headers.items())))
    return out


@pytest.mark.parametrize("origins", [["*"], ["https://shop.example"]])
def test_the_direct_route_answers_as_the_middleware_stack_does(origins):
    direct, mounted = gateway(origins), gateway(origins)
    fast = asyncio.run(answers(direct, "/v1/events"))
    slow = asyncio.run(answers(Starlette(routes=[Mount("/gw", app=mounted)]), "/gw/v1/events"))
    assert direct.middleware_stack is None  # it never went through the stack
    assert fast == slow
    statuses = [a[0] for a in fast]
    assert statuses == [202, 202, 202, 401, 401, 422, 422, 413, 413, 403, 202, 429]
    assert fast[0][1] == {
        "accepted": 2,
        "rejected": [{"index": 1, "error": "unknown event type 'teleport' - at `$.type`"}],
    }
    cors = [dict(a[2]).get("access-control-allow-origin") for a in fast[:3]]
    assert cors == ([None, "*", "*"] if origins == ["*"] else [None, "https://shop.example", None])
    assert dict(fast[-1][2])["retry-after"] == "3"  # 3 events at 1 event/s
    # and a page of another origin can read it (the browser trackers wait at least that on 429 and 503)
    assert dict(fast[-1][2])["access-control-expose-headers"] == "Retry-After"
    assert [len(a.state.delivery.sent) for a in (direct, mounted)] == [8, 8]  # 4 accepted batches of 2
    assert [len(a.state.delivery.dead) for a in (direct, mounted)] == [5, 5]  # every teleport
