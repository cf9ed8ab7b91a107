"""Bad input is named and never blocks valid events; without Kafka the gateway answers 503, never 202."""

from __future__ import annotations

import json

import httpx
import pytest

from livemetrics.contract import decode
from livemetrics.keys import KeyRegistry
from livemetrics.settings import Settings
from livemetrics.topics import create_topics
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer
from tests.support.services import local_kafka

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(settings, add_seller):
    browser_key, _ = add_seller(settings, "seller-a")
    registry = KeyRegistry(settings).start()
    server = ThreadServer(create_gateway(settings, registry)).start()
    yield server, browser_key
    server.stop()
    registry.stop()


def post_raw(server, key, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/events",
        content=content,
        timeout=20,
        headers=f.browser_headers(key, **{"Content-Type": "application/json"}),
    )


def test_malformed_json_is_named(gateway):
    server, key = gateway
    r = post_raw(server, key, b'{"events": [{"type": "page_view",')
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["error"]


def test_single_bad_event_names_the_field(gateway):
    server, key = gateway
    missing = f.page_view()
    del missing["session_id"]
    r = post_raw(server, key, json.dumps(missing).encode())
    assert r.status_code == 422
    assert "session_id" in r.json()["error"]
    r = post_raw(server, key, json.dumps(f.page_view(type="page_vue")).encode())
    assert r.status_code == 422
    body = r.json()
    assert "page_vue" in body["error"] and "$.type" in body["error"]


def test_valid_events_of_a_batch_are_delivered_next_to_rejected_ones(gateway, settings):
    server, key = gateway
    good = [f.page_view(), f.page_view("category", category="lamps")]
    no_session = f.page_view()
    del no_session["session_id"]
    batch = [good[0], no_session, f.page_view(type="teleport"), good[1]]
    r = post_raw(server, key, json.dumps({"events": batch}).encode())
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 2
    assert [x["index"] for x in body["rejected"]] == [1, 2]
    assert "session_id" in body["rejected"][0]["error"]
    assert "teleport" in body["rejected"][1]["error"]

    delivered = read_topic(settings, "page-events", expect=2)
    events = [decode(m.value()) for m in delivered]
    assert sorted(e.event_id for e in events) == sorted(g["event_id"] for g in good)
    assert {e.seller_id for e in events} == {"seller-a"}
    assert all(m.key() == e.session_id.encode() for m, e in zip(delivered, events))

    dead = [json.loads(m.value()) for m in read_topic(settings, "dead-letter", expect=2)]
    assert sorted(d["index"] for d in dead) == [1, 2]
    assert {d["reason"] for d in dead} == {"schema"}


def test_a_body_starting_with_a_utf8_bom_is_read_without_it(gateway, settings):
    """RFC 8259 lets a parser ignore a leading BOM, and Windows tools write one: it was refused as 'the
    body must be a JSON object'."""
    server, key = gateway
    single, batch = f.page_view(), [f.page_view(), f.heartbeat()]
    for body in (single, {"events": batch}):
        r = post_raw(server, key, b"\xef\xbb\xbf" + json.dumps(body).encode())
        assert r.status_code == 202 and r.json()["accepted"] == (1 if body is single else 2), r.text
    delivered = read_topic(settings, "page-events", expect=3)
    assert sorted(decode(m.value()).event_id for m in delivered) == sorted(e["event_id"] for e in [single, *batch])
    r = post_raw(server, key, b"\xef\xbb\xbf\xef\xbb\xbf" + json.dumps(single).encode())  # one is ignored, not two
    assert r.status_code == 422 and "malformed JSON" in r.json()["error"], r.text


def test_kafka_stopped_means_503_with_retry_after(tmp_path, add_seller):
    with local_kafka(tmp_path / "own-broker") as (bootstrap, broker):
        s = Settings(
            data_dir=tmp_path / "data",
            kafka_bootstrap=bootstrap,
            topic_prefix="stop.",
            delivery_timeout_ms=2000,
            store="memory://",
        )
        create_topics(s)
        key, _ = add_seller(s, "seller-a")
        registry = KeyRegistry(s).start()
        server = ThreadServer(create_gateway(s, registry)).start()
        try:
            ok = post_raw(server, key, json.dumps(f.page_view()).encode())
            assert ok.status_code == 202
            broker.stop()
            statuses = []
            for _ in range(3):
                r = post_raw(server, key, json.dumps({"events": [f.page_view(), f.page_view()]}).encode())
                statuses.append(r.status_code)
                assert r.status_code == 503, r.text
                assert int(r.headers["Retry-After"]) > 0
                assert r.json()["accepted"] == 0
            assert 202 not in statuses
        finally:
            server.stop()
            registry.stop()
