"""Fuzz through the real gateway (uvicorn, real Kafka producer): thousands of generated bodies, valid,
near-valid and hostile (tests/support/fuzz_bodies.py). For every body: no 5xx, a JSON answer, every
event either accepted or named in `rejected` with its index and a reason that says where; valid events
accepted, near-valid ones rejected. Then, for everything accepted: each accepted occurrence is on its raw
topic exactly once, each rejected event on the dead-letter topic, ClickHouse (the real sink, in the API
process) holds every accepted event exactly once, and the real Faust worker counts every accepted
session as active.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from clickhouse.client import get_client
from livemetrics.contract import TOPIC_FOR_TYPE
from tests.support import factories as f
from tests.support.fuzz_bodies import ACCEPT, BROKEN_BODIES, REJECT, bodies
from tests.support.kafka_read import read_topic
from tests.support.servers import wait_until
from tests.support.stack import Stack, module_settings, new_seller

pytestmark = pytest.mark.integration
SELLER = "fuzz"
BODIES = 1200
PER_EXAMPLE = 20
CONCURRENT = 8


@pytest.fixture(scope="module")
def stack(kafka, clickhouse_dsn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    s = module_settings(kafka, clickhouse_dsn, tmp, gateway_rate_per_s=1_000_000)
    st = Stack(s, tmp, {name: new_seller(s, name) for name in (SELLER, "warmup")})
    try:
        st.warm_up()
        st.wait_keys(st.sellers[SELLER][0])
        yield st
    finally:
        st.close()


class Ledger:
    """What the gateway said it accepted and rejected, occurrence by occurrence."""

    def __init__(self):
        self.accepted: Counter[str] = Counter()  # event_id -> accepted occurrences
        self.by_topic: Counter[str] = Counter()
        self.sessions: set[str] = set()
        self.rejected_events = 0
        self.bodies = 0
        self.statuses: Counter[int] = Counter()


def check_answer(r: httpx.Response, evs: list, ledger: Ledger) -> None:
    assert r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/json", r.headers
    data = r.json()
    if not evs:  # unusable as a whole: refused with a reason, nothing accepted
        assert r.status_code in (413, 422), (r.status_code, data)
        assert data["error"] and not data.get("accepted"), data
        ledger.rejected_events += len(data.get("rejected", []))
        return
    n = len(evs)
    assert r.status_code in (202, 422), (r.status_code, data)
    rejected = {x["index"]: x["error"] for x in data["rejected"]}
    assert len(rejected) == len(data["rejected"]) and all(0 <= i < n for i in rejected), data
    for i, error in rejected.items():
        assert isinstance(error, str) and len(error) > 10, f"event {i} rejected without a reason: {error!r}"
        # each reason names where (a path) or is about the event as a whole (its size, its JSON)
        assert "`$" in error or error.startswith(("event is ", "malformed JSON")), f"event {i}: {error!r}"
    accepted = [i for i in range(n) if i not in rejected]
    assert data["accepted"] == len(accepted), data
    assert (r.status_code == 202) == bool(accepted), data
    for i, (ev, expected) in enumerate(evs):
        if expected == ACCEPT:
            assert i not in rejected, f"valid event {i} rejected: {rejected[i]}\n{json.dumps(ev)[:2000]}"
        elif expected == REJECT:
            assert i in rejected, f"event {i} should have been rejected:\n{json.dumps(ev)[:2000]}"
    for i in accepted:
        ev = evs[i][0]
        ledger.accepted[str(uuid.UUID(ev["event_id"]))] += 1
        ledger.by_topic[TOPIC_FOR_TYPE[ev["type"]]] += 1
        ledger.sessions.add(ev["session_id"])
    ledger.rejected_events += len(rejected)


def post_bodies(st: Stack, ledger: Ledger) -> None:
    """BODIES bodies, drawn PER_EXAMPLE at a time and posted CONCURRENT at once (the gateway answers each
    only after Kafka's acknowledgement, so one at a time would mostly wait)."""
    key = st.sellers[SELLER][0]
    headers = f.browser_headers(key, **{"Content-Type": "application/json"})
    with (
        httpx.Client(base_url=st.gateway.url, headers=headers, timeout=30) as client,
        ThreadPoolExecutor(CONCURRENT) as pool,
    ):
        for body in BROKEN_BODIES:  # each once for certain (the generator draws them only now and then)
            r = client.post("/v1/events", content=body)
            ledger.bodies += 1
            ledger.statuses[r.status_code] += 1
            check_answer(r, [], ledger)

        @settings(
            max_examples=BODIES // PER_EXAMPLE, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(hst.lists(bodies(SELLER), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
        def some_bodies(generated):
            answers = pool.map(lambda g: client.post("/v1/events", content=g[0]), generated)
            for (_, evs), r in zip(generated, answers):
                ledger.bodies += 1
                ledger.statuses[r.status_code] += 1
                check_answer(r, evs, ledger)

        some_bodies()


def stored(st: Stack) -> Counter[str]:
    s = st.settings
    rows = (
        get_client(s)
        .query(
            f"SELECT toString(event_id), count() FROM {s.clickhouse_database}.events "
            f"WHERE seller_id = '{SELLER}' GROUP BY event_id"
        )
        .result_rows
    )
    return Counter({eid: n for eid, n in rows})


@pytest.mark.timeout(600)
def test_fuzzed_bodies_through_the_gateway(stack):
    ledger = Ledger()
    started = time.monotonic()
    post_bodies(stack, ledger)
    took = time.monotonic() - started
    print(
        f"fuzz: {ledger.bodies} bodies in {took:.1f} s, statuses {dict(ledger.statuses)}, "
        f"{sum(ledger.accepted.values())} events accepted, {ledger.rejected_events} rejected"
    )
    assert ledger.bodies >= BODIES + len(BROKEN_BODIES)
    assert ledger.statuses[202] and ledger.statuses[422] and ledger.statuses[413], ledger.statuses
    s = stack.settings

    # Kafka: each accepted occurrence exactly once on its raw topic; each rejected event dead-lettered.
    in_kafka: Counter[str] = Counter()
    for topic, count in ledger.by_topic.items():
        warmup = 1 if topic == "page-events" else 0  # Stack.warm_up's page view
        messages = [json.loads(m.value()) for m in read_topic(s, topic, count + warmup, timeout=30)]
        mine = [m for m in messages if m["seller_id"] == SELLER]
        assert len(mine) == count, (topic, len(mine), count)
        in_kafka.update(m["event_id"] for m in mine)
    assert in_kafka == ledger.accepted
    dead = read_topic(s, "dead-letter", ledger.rejected_events, timeout=30)
    assert len([m for m in dead if json.loads(m.value())["seller_id"] == SELLER]) == ledger.rejected_events

    # ClickHouse, through the real sink: every accepted event stored exactly once (an event_id sent twice,
    # in one body or two, is one event: the sink keeps the first, docs/clickhouse.md "One row per event").
    wait_until(lambda: len(stored(stack)) >= len(ledger.accepted), 90, interval=0.5, what="the sink stored every event")
    assert stored(stack) == Counter(dict.fromkeys(ledger.accepted, 1))

    # Live, through the real worker: every session with an accepted event is active.
    token = stack.sellers[SELLER][1]
    wait_until(
        lambda: stack.live(SELLER, token)["active_sessions"] == len(ledger.sessions),
        60,
        interval=0.5,
        what=f"{len(ledger.sessions)} active sessions",
        alive=stack.worker.alive,
    )
