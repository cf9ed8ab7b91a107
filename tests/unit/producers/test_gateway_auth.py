"""The replay cache and the per-key token bucket (pure logic)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.gateway.auth import RateLimiter, ReplayCache, ReplayCacheFull, bearer_key
from producers.gateway.enrich import client_ip


def test_replay_cache_refuses_a_signature_until_it_is_stale():
    c = ReplayCache(keep_s=600)
    assert c.first_time(b"sig-1", 1000.0)
    assert not c.first_time(b"sig-1", 1001.0)
    assert c.first_time(b"sig-2", 1001.0)
    assert not c.first_time(b"sig-1", 1599.0)
    assert c.first_time(b"sig-1", 1700.0)  # forgotten only after the timestamp check refuses it anyway


def test_replay_cache_is_bounded_and_never_forgets_a_signature_inside_its_window():
    c = ReplayCache(keep_s=600, max_entries=3)
    for i in range(3):
        assert c.first_time(str(i).encode(), 1000.0 + i)
    with pytest.raises(ReplayCacheFull) as full:
        c.first_time(b"3", 1010.0)
    assert full.value.retry_after == 590  # when the oldest (seen at 1000) leaves its window
    assert len(c._seen) == 3 and not c.first_time(b"0", 1010.0)  # still refused as a replay
    assert c.first_time(b"3", 1600.0)  # the oldest left its window: room again


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 50)), max_size=200), st.integers(1, 8))
def test_a_remembered_signature_is_never_accepted_again_inside_its_window(requests, cap):
    c, accepted, now = ReplayCache(keep_s=30, max_entries=cap), {}, 0.0
    for sig, step in requests:
        now += step
        try:
            first = c.first_time(str(sig).encode(), now)
        except ReplayCacheFull as exc:
            assert len(c._seen) == cap and 1 <= exc.retry_after <= 30
            continue
        if sig in accepted and now - accepted[sig] < 30:
            assert not first
        if first:
            accepted[sig] = now
        assert len(c._seen) <= cap


def test_rate_limiter_allows_burst_then_says_when_to_retry():
    r = RateLimiter(default_rate=100)
    assert r.take("k", 0, 200, now=0.0) == 0  # burst: two seconds' worth
    assert r.take("k", 0, 50, now=0.0) == 1
    assert r.take("k", 0, 50, now=0.5) == 0  # refilled 50 in half a second
    assert r.take("k", 0, 100, now=0.5) == 1
    assert r.take("other", 0, 200, now=0.5) == 0  # per key
    assert r.take("fast", 10_000, 5_000, now=0.5) == 0  # the key's own rate wins


def test_rate_limiter_retry_after_grows_with_the_deficit():
    r = RateLimiter(default_rate=10)
    assert r.take("k", 0, 20, now=0.0) == 0
    assert r.take("k", 0, 20, now=0.0) == 2


def test_bearer_key_sources():
    assert bearer_key({"authorization": "Bearer lm_pk_a_b"}, {}) == "lm_pk_a_b"
    assert bearer_key({"x-livemetrics-key": "lm_pk_c_d"}, {}) == "lm_pk_c_d"
    assert bearer_key({}, {"key": "lm_pk_e_f"}) == "lm_pk_e_f"


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies():
    assert client_ip("198.51.100.7", "203.0.113.1", []) == "198.51.100.7"
    assert client_ip("10.0.0.2", "203.0.113.1", ["10.0.0.0/8"]) == "203.0.113.1"
    assert client_ip("10.0.0.2", "6.6.6.6, 203.0.113.1, 10.0.0.3", ["10.0.0.0/8"]) == "203.0.113.1"
    assert client_ip("198.51.100.7", "203.0.113.1", ["10.0.0.0/8"]) == "198.51.100.7"
