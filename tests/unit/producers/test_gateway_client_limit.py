"""The per-client-IP limit on browser-key traffic (producers/gateway/client_limit.py) and the event-type
check (producers/gateway/ingest.py ``forbidden_type``): pure, no HTTP."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from livemetrics.contract import MAX_BATCH
from livemetrics.validation import Rejection
from producers.gateway.client_limit import ClientLimiter, client_key
from producers.gateway.ingest import forbidden_type, parse_body
from tests.support import factories as f


def test_clients_are_ipv4_addresses_or_ipv6_64s():
    assert client_key("203.0.113.9") == "203.0.113.9"
    assert client_key("::ffff:203.0.113.9") == "203.0.113.9"  # the same IPv4 client
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key(None) == client_key("") == "?"


def test_each_client_has_its_own_bucket_of_two_seconds():
    limiter = ClientLimiter(10)
    assert limiter.take("203.0.113.1", 20, now=100.0) == 0
    assert limiter.take("203.0.113.1", 1, now=100.0) == 1  # empty: a second to wait
    assert limiter.take("203.0.113.2", 20, now=100.0) == 0  # another client is not held back
    assert limiter.take("203.0.113.1", 10, now=101.0) == 0  # refilled at 10/s


def test_idle_clients_are_forgotten_and_that_changes_nothing():
    limiter = ClientLimiter(10)
    for i in range(1000):
        limiter.take(f"198.51.100.{i % 250}", 5, now=100.0 + i / 1000)
    assert len(limiter) == 250
    limiter.take("203.0.113.1", 20, now=150.0)
    assert limiter.take("203.0.113.9", 1, now=160.0) == 0  # the prune runs: 60 s idle hold the largest batch
    assert len(limiter) == 2  # 203.0.113.1 (10 s idle: not yet) and the new one
    assert limiter.take("198.51.100.1", 20, now=160.0) == 0  # a forgotten client starts full, as it would have been


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["203.0.113.1", "203.0.113.2", "2001:db8::1", "2001:db8::2"]),
            st.integers(1, MAX_BATCH),
            st.floats(0, 30),
        ),
        max_size=40,
    )
)
def test_pruning_never_changes_an_answer(requests):
    """The same requests against a limiter that prunes and one that never does get the same answers."""
    pruning, keeping = ClientLimiter(10), ClientLimiter(10)
    keeping._pruned_at = float("inf")  # never prunes
    now = 1000.0
    for ip, n, dt in requests:
        now += dt
        assert pruning.take(ip, n, now) == keeping.take(ip, n, now)


def test_the_first_event_type_a_key_may_not_send_is_named():
    body = json.dumps({"events": [f.page_view(), f.page_view(type="teleport"), f.payment_failed(), f.heartbeat()]})
    parsed = parse_body(body.encode())
    assert any(p.__class__ is Rejection for p in parsed)  # an invalid event does not count as a type sent
    assert forbidden_type(parsed, ["page_view", "heartbeat"]) == "payment_failed"
    assert forbidden_type(parsed, ["page_view", "heartbeat", "payment_failed"]) is None
