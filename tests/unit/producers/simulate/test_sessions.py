"""The traffic model's sessions are valid events that walk the funnel like real people do."""

from __future__ import annotations

import random

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.contract import PII_TYPES, EventIn, check_rules
from producers.gateway.enrich import user_agent_info
from producers.simulate.catalog import PAYMENT_METHODS, SELLERS
from producers.simulate.sessions import HEARTBEAT_S, plan_bot, plan_failure_burst, plan_session

T0 = 1_767_225_600_000  # 2026-01-01
FUNNEL = ["checkout_started", "payment_started"]


def valid(body: dict) -> None:
    ev = msgspec.json.decode(msgspec.json.encode(body), type=EventIn)
    check_rules(ev)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), seller=st.sampled_from(SELLERS))
def test_every_session_is_valid_ordered_and_follows_the_funnel(seed, seller):
    events = plan_session(random.Random(seed), seller, T0)
    assert events, "a session has at least its landing page"
    assert events[0].body["type"] == "page_view"
    times = [e.at_ms for e in events]
    assert times == sorted(times) and times[0] == T0
    assert len({e.body["session_id"] for e in events}) == 1
    assert len({e.body["event_id"] for e in events}) == len(events)
    assert len({e.user_agent for e in events}) == 1
    types = [e.body["type"] for e in events]
    for e in events:
        valid(e.body)
        assert e.body["ts"] == e.at_ms
        assert ("customer" in e.body) == (e.body["type"] in PII_TYPES)
    if "payment_started" in types:
        assert types.index("checkout_started") < types.index("payment_started")
    # every payment outcome answers a start, and nothing happens after a success
    assert types.count("payment_succeeded") + types.count("payment_failed") == types.count("payment_started")
    if "payment_succeeded" in types:
        assert types[-1] == "payment_succeeded" and types.count("payment_succeeded") == 1
    # heartbeats never come faster than the tracker sends them
    beats = [e.at_ms for e in events if e.body["type"] == "heartbeat"]
    prev = [max(t for t in times if t < b) for b in beats]
    assert all(b - p >= HEARTBEAT_S * 1000 for b, p in zip(beats, prev))


def test_payment_failures_carry_their_methods_own_error_codes():
    codes = {m.name: {c for c, _, _ in m.errors} for m in PAYMENT_METHODS}
    rng = random.Random(1)
    seen = 0
    for _ in range(3000):
        for e in plan_session(rng, SELLERS[0], T0):
            if e.body["type"] == "payment_failed":
                p = e.body["payment"]
                assert p["error_code"] in codes[p["method"]] and p["error_message"]
                seen += 1
    assert seen > 20


def test_drop_offs_look_like_a_real_funnel():
    rng = random.Random(2)
    n = 6000
    reached = {"cart": 0, "checkout_started": 0, "payment_started": 0, "payment_succeeded": 0}
    bots = 0
    for _ in range(n):
        events = plan_session(rng, SELLERS[0], T0)
        if user_agent_info(events[0].user_agent)[3]:
            bots += 1
            assert {e.body["type"] for e in events} == {"page_view"}
            continue
        types = {e.body["type"] for e in events} | {e.body.get("page", {}).get("type") for e in events}
        for step in reached:
            reached[step] += step in types
    humans = n - bots
    assert 0.04 < bots / n < 0.12
    # each step loses people, none loses everybody
    assert (
        humans
        > reached["cart"]
        > reached["checkout_started"]
        > reached["payment_started"]
        > reached["payment_succeeded"]
        > 0
    )
    assert 0.3 < reached["checkout_started"] / reached["cart"] < 0.8  # cart abandonment
    assert 0.6 < reached["payment_started"] / reached["checkout_started"] < 0.85  # checkout abandonment
    assert reached["payment_succeeded"] / reached["payment_started"] > 0.85


def test_category_popularity_and_campaigns_shape_the_traffic():
    rng = random.Random(3)
    seller = SELLERS[0]  # lamps 30 vs sofas 12; ah-lamp-1 is in a campaign
    cats, offers = {}, {}
    for _ in range(3000):
        for e in plan_session(rng, seller, T0, bots=False):
            page = e.body.get("page") or {}
            if page.get("type") == "category":
                cats[page["category"]] = cats.get(page["category"], 0) + 1
            if page.get("type") == "offer":
                offers[page["offer_id"]] = offers.get(page["offer_id"], 0) + 1
    assert cats["lamps"] > 1.8 * cats["sofas"]
    assert offers["ah-lamp-1"] > 2 * offers["ah-lamp-2"]


def test_bots_announce_themselves_and_send_no_heartbeats():
    events = plan_bot(random.Random(4), SELLERS[1], T0)
    assert user_agent_info(events[0].user_agent)[3] is True
    assert all(e.body["type"] == "page_view" for e in events)


def test_a_failure_burst_is_n_same_code_card_failures_within_seconds():
    events = plan_failure_burst(random.Random(5), SELLERS[0], T0, 25, spread_ms=5000)
    failed = [e for e in events if e.body["type"] == "payment_failed"]
    assert len(failed) == 25
    assert {e.body["payment"]["error_code"] for e in failed} == {"psp_unavailable"}
    assert {e.body["payment"]["method"] for e in failed} == {"card"}
    assert max(e.at_ms for e in events) - T0 < 7000
    for e in events:
        valid(e.body)
