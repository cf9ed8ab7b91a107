"""A raw topic whose max.message.bytes an operator lowered under the largest valid event: the event over
it is refused on its own with an error that says it is the server's configuration and not worth retrying,
kept in dead-letter; the rest of its request and other sellers' events are delivered; /readyz and the log
name the topic and both limits (``producers/gateway/topic_limits.py``). Before, every such request was
answered 503 + Retry-After for ever, and small events batched past the limit were refused too."""

from __future__ import annotations

import json
import logging
import secrets
import uuid

import httpx
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from livemetrics.kafka_config import admin_config
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from producers.gateway.topic_limits import REQUIRED_BYTES
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer

pytestmark = pytest.mark.integration

LIMIT = 20_000


def lower_limit(settings, topic: str, limit: int) -> None:
    admin = AdminClient(admin_config(settings))
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def checkout(items: int, random_names: bool = True, **kw) -> dict:
    """A checkout of ``items`` rows with 190-character names: random ones compress to nothing less (the
    broker checks a batch's size after lz4), repeated letters to a few percent."""
    rows = [
        {
            "sku": f"SKU-{i}",
            "name": secrets.token_urlsafe(150)[:190] if random_names else "n" * 190,
            "qty": 1,
            "unit_price": 1,
        }
        for i in range(items)
    ]
    return f.checkout_started(checkout={"items": rows, "total": items, "currency": "EUR"}, **kw)


def post(server, key, events: list[dict]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/events",
        content=json.dumps({"events": events}).encode(),
        timeout=30,
        headers=f.browser_headers(key, **{"Content-Type": "application/json"}),
    )


def test_an_event_over_a_lowered_topic_limit_is_refused_alone_and_named(settings, add_seller, caplog):
    topic = settings.topic("checkout-events")
    lower_limit(settings, topic, LIMIT)
    key_a, _ = add_seller(settings, "seller-a")
    key_b, _ = add_seller(settings, "seller-b")
    registry = KeyRegistry(settings).start()
    caplog.set_level(logging.ERROR, logger="livemetrics.gateway")
    server = ThreadServer(create_gateway(settings, registry)).start()
    try:
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200
        [problem] = ready.json()["problems"]
        assert topic in problem and str(LIMIT) in problem and str(REQUIRED_BYTES) in problem
        assert any(topic in r.getMessage() and str(LIMIT) in r.getMessage() for r in caplog.records)

        big = checkout(100)  # ~25 KB: valid (under 32 KiB), over the topic's 20,000 bytes even compressed
        assert 20_000 < len(json.dumps(big)) < 32 * 1024
        small = f.checkout_started()
        r = post(server, key_a, [small, big])
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["accepted"] == 1 and [x["index"] for x in body["rejected"]] == [1]
        error = body["rejected"][0]["error"]
        assert "server configuration problem" in error and topic in error and "max.message.bytes" in error
        assert "Retry-After" not in r.headers

        r = post(server, key_a, [big])  # nothing else in it: refused, not 503 for ever
        assert r.status_code == 422 and "server configuration problem" in r.json()["error"], r.text

        squeezable = checkout(100, random_names=False)  # as large, but a few KB compressed: the broker takes it
        r = post(server, key_a, [squeezable])
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text

        # Another seller's small events, 60 of one session in one request (one partition: one batch of
        # ~100 KB, 34 KB of it random, before): the producer's batches stay under the topic's limit.
        session = f"sess-{uuid.uuid4().hex[:12]}"
        r = post(server, key_b, [checkout(3, session_id=session) for _ in range(60)])
        assert r.status_code == 202 and r.json()["accepted"] == 60, r.text

        ids = {json.loads(m.value())["event_id"] for m in read_topic(settings, "checkout-events", expect=62)}
        assert (
            len(ids) == 62 and squeezable["event_id"] in ids and small["event_id"] in ids and big["event_id"] not in ids
        )
        dead = [json.loads(m.value()) for m in read_topic(settings, "dead-letter", expect=2)]
        assert [(d["reason"], d["event"]["event_id"]) for d in dead] == [("topic_limit", big["event_id"])] * 2
    finally:
        server.stop()
        registry.stop()
