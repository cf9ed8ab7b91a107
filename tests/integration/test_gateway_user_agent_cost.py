"""Red-team round (session 9, H3): a long User-Agent header no longer holds the gateway's event loop.

The bot check (crawlerdetect: one Python regex of ~1,500 alternatives, tried at every position of the
header) ran on the event loop for every header new to the cache: an 8,000-character header held every
other request of the process, every seller's, for 16-22 s on the loaded test machine (~3 s at 2,000
characters). Now the first 512 characters are read, through RE2 (tests/unit/producers/
test_gateway_user_agent_cost.py compares the answers with crawlerdetect's).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from livemetrics import keys
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.kafka_read import read_topic
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration

HOSTILE = 4


def test_other_sellers_are_answered_while_long_user_agents_arrive(settings, add_seller):
    attacker, _ = add_seller(settings, "seller-flood")
    victim, _ = add_seller(settings, "seller-b")
    registry = KeyRegistry(settings).start()
    wait_until(
        lambda: registry.record(keys.split_key(attacker)[1]) and registry.record(keys.split_key(victim)[1]),
        10,
        what="keys loaded",
    )
    server = ThreadServer(create_gateway(settings, registry)).start()
    answers: list[int] = []
    try:
        # warm: the first request of a process loads ua-parser's rules (seconds on this machine)
        assert httpx.post(f"{server.url}/v1/events", json=f.page_view(), headers=f.browser_headers(victim)).is_success

        def flood() -> None:
            with httpx.Client(timeout=120) as c:
                for i in range(HOSTILE):
                    ua = f"Mozilla/5.0 {i} " + "a" * 8_000  # new to the cache each time
                    headers = f.browser_headers(attacker, **{"User-Agent": ua})
                    answers.append(c.post(f"{server.url}/v1/events", json=f.page_view(), headers=headers).status_code)

        t = threading.Thread(target=flood)
        t.start()
        slowest = 0.0
        sent = []
        with httpx.Client(timeout=120) as c:
            while t.is_alive() or len(sent) < 5:
                ev = f.page_view()
                started = time.monotonic()
                r = c.post(f"{server.url}/v1/events", json=ev, headers=f.browser_headers(victim))
                slowest = max(slowest, time.monotonic() - started)
                assert r.status_code == 202
                sent.append(ev["event_id"])
        t.join()
        assert answers == [202] * HOSTILE
        # One request's own work and its broker acknowledgement; seconds when a header held the loop.
        assert slowest < 1.5, f"seller-b waited {slowest:.1f} s"
        got = read_topic(settings, "page-events", expect=1 + len(sent) + HOSTILE)
        stored = [json.loads(m.value())["user_agent"] for m in got]
        assert sorted(len(ua) for ua in stored)[-HOSTILE:] == [512] * HOSTILE
    finally:
        server.stop()
        registry.stop()
