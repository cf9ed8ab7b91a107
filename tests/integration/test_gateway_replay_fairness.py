"""Red-team round (session 9, H3): one seller's server key cannot fill the replay cache for everyone.

The gateway remembers each signature for 2 x the tolerance (600 s) to refuse replays, at most
``replay_cache_max`` of them, and answers 503 when full rather than forget one early. That memory was one
per process, shared by every server key: one seller (or whoever holds its secret) signing requests as fast
as the gateway answers them (garbage bodies too: a signature is remembered before the body is read, and a
422 costs no rate) filled it, and then every other seller's signed requests got 503 for as long as it kept
it full. Now each key has its own: the key that fills its cache gets the 503, no other key does.
"""

from __future__ import annotations

import json

import pytest

from livemetrics import keys
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.integration.test_gateway_keys import post, signed
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration

CAP = 5


def test_one_key_filling_its_replay_cache_leaves_other_sellers_signed_requests_alone(make_settings):
    s = make_settings(replay_cache_max=CAP)
    kek = s.key_encryption_key.get_secret_value()
    attacker, a_rec = keys.new_server_key("seller-flood", kek)
    victim, b_rec = keys.new_server_key("seller-b", kek)
    for rec in (a_rec, b_rec):
        keys.publish(s, rec)
    registry = KeyRegistry(s).start()
    wait_until(lambda: registry.record(a_rec.key_id) and registry.record(b_rec.key_id), 10, what="keys loaded")
    server = ThreadServer(create_gateway(s, registry)).start()
    try:
        # The flood: signed garbage, each refused with 422 and still remembered (its signature was valid).
        for i in range(CAP):
            garbage = b"not json %d" % i
            r = post(server.url, garbage, signed(attacker, garbage))
            assert r.status_code == 422, r.text
        garbage = b"not json, once more"
        r = post(server.url, garbage, signed(attacker, garbage))
        assert r.status_code == 503 and "retry in" in r.json()["error"], r.text  # its own cache is full
        # Another seller's signed events still go in, and its replays are still refused.
        sent = []
        for _ in range(CAP):
            ev = f.page_view()
            body = json.dumps(ev).encode()
            headers = signed(victim, body)
            r = post(server.url, body, headers)
            assert r.status_code == 202, r.text
            sent.append(ev["event_id"])
            r = post(server.url, body, headers)
            assert r.status_code == 401 and "replayed signature" in r.json()["error"]
        got = read_topic(s, "page-events", expect=len(sent))
        assert sorted(json.loads(m.value())["event_id"] for m in got) == sorted(sent)
        # The victim's own cap holds for it too (never a signature forgotten early to make room).
        body = json.dumps(f.page_view()).encode()
        assert post(server.url, body, signed(victim, body)).status_code == 503
    finally:
        server.stop()
        registry.stop()
