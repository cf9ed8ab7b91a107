"""A batch with one event holding a lone UTF-16 surrogate escape, against the real gateway and broker
(livemetrics/validation.py). The trackers cut a page's title to 200 UTF-16 units (``title.slice(0, 200)``):
a title with an emoji across that point leaves half of its surrogate pair, which JSON.stringify writes as
``"\\ud83d"``, no Unicode character, so no JSON decoder of the gateway takes the body. Before, that one event
made the whole batch a 400 ("malformed JSON: ... unexpected end of hex escape") and the visitor's other
events, up to 500 (a tracker does not send a 4xx again), were lost. Now that event alone is refused, its
error naming the field, and the others are accepted and on their raw topic."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import factories as f
from tests.support.browser_gateway import browser_gateway
from tests.support.kafka_read import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def gw(settings, add_seller):
    with browser_gateway(settings, add_seller) as served:
        yield served


def test_an_event_with_a_lone_surrogate_is_refused_alone(gw, settings):
    url, headers = gw
    evs = [f.page_view() for _ in range(5)]
    title = "Lampe " + "x" * 193 + "\U0001f4a1 de luxe"  # the emoji at UTF-16 units 199-200: cut in half
    evs[1]["page"]["title"] = title.encode("utf-16-le")[:400].decode("utf-16-le", "surrogatepass")
    evs[3]["page"]["referrer"] = "https://shop.example/\udc00"  # a lone low half too
    body = json.dumps({"events": evs}).encode()  # ensure_ascii: "\ud83d" as JSON.stringify writes it
    assert b"\\ud83d" in body and b"\\udc00" in body
    r = httpx.post(f"{url}/v1/events", content=body, headers=headers, timeout=20)
    assert r.status_code == 202, r.text
    data = r.json()
    assert data["accepted"] == 3, data
    rejected = {x["index"]: x["error"] for x in data["rejected"]}
    assert sorted(rejected) == [1, 3], data
    assert "lone UTF-16 surrogate" in rejected[1] and "`$.page.title`" in rejected[1], rejected
    assert "`$.page.referrer`" in rejected[3], rejected
    stored = read_topic(settings, "page-events", expect=3)
    assert sorted(json.loads(m.value())["event_id"] for m in stored) == sorted(evs[i]["event_id"] for i in (0, 2, 4))
    # a body broken otherwise is still refused whole, as before
    r = httpx.post(f"{url}/v1/events", content=body[:-5], headers=headers, timeout=20)
    assert r.status_code in (400, 422) and "malformed JSON" in r.json()["error"], r.text
