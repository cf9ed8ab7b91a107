"""Pure parts of the API's guards: WebSocket slots per client and in all, the client a socket counts
against, the oversized-message test, and the per-token request bucket."""

from hypothesis import given
from hypothesis import strategies as st

from api.rate_limit import TokenBuckets
from api.ws_limits import Slots, client_key, oversized


def test_slots_refuse_per_client_then_in_all_and_free_on_release():
    s = Slots(max_total=3, max_per_client=2)
    s.hold("a"), s.hold("a")
    assert s.refusal("a")[0] == 1008 and s.refusal("b") is None
    s.hold("b")
    assert s.refusal("c")[0] == 1013
    s.release("a")
    assert s.refusal("a") is None and s.per_client == {"a": 1, "b": 1}
    s.release("a"), s.release("b")
    assert s.total == 0 and s.per_client == {}


def test_the_client_of_a_socket():
    assert client_key("198.51.100.7", "203.0.113.1", []) == "198.51.100.7"  # no trusted proxy: the peer
    assert client_key("10.0.0.2", "6.6.6.6, 203.0.113.1, 10.0.0.3", ["10.0.0.0/8"]) == "203.0.113.1"
    assert client_key("2001:db8:1:2:3::9", None, []) == "2001:db8:1:2::/64"
    assert client_key("10.0.0.2", "2001:db8::1", ["10.0.0.0/8"]) == "2001:db8::/64"


def test_a_forwarded_hop_that_is_no_ip_address_is_never_the_client():
    trusted = ["10.0.0.0/8"]
    for hop in ("<script>", "unknown", "203.0.113.1x", "a" * 200, "203.0.113.1, evil"):
        assert client_key("10.0.0.2", hop, trusted) == "10.0.0.2", hop
    assert client_key("10.0.0.2", "203.0.113.1, not-an-ip, 10.0.0.3", trusted) == "10.0.0.2"


def test_oversized_counts_bytes_not_characters():
    assert not oversized({"text": "é" * 128}, 256) and oversized({"text": "é" * 129}, 256)
    assert oversized({"bytes": b"x" * 257}, 256) and not oversized({"bytes": b"x" * 256}, 256)
    assert not oversized({"type": "websocket.receive"}, 1)


@given(st.lists(st.floats(0, 3), max_size=100), st.floats(0.1, 50), st.integers(1, 20))
def test_a_token_never_gets_more_than_its_burst_plus_its_rate(steps, rate, burst):
    now = [0.0]
    b = TokenBuckets(rate, burst, clock=lambda: now[0])
    granted = 0
    for step in steps:
        now[0] += step
        wait = b.wait_s("t")
        granted += wait == 0
        assert wait == 0 or 1 <= wait <= max(1, 1 / rate + 1)
    assert granted <= burst + rate * now[0] + 1e-9
    assert TokenBuckets(rate, burst, clock=lambda: now[0]).wait_s("other") == 0  # per principal


def test_a_socket_may_send_its_burst_then_one_message_a_second():
    from api.ws_limits import MessageBudget

    now = [100.0]
    budget = MessageBudget(burst=20, rate=1.0, clock=lambda: now[0])
    assert all(budget.spend() for _ in range(20))
    assert not budget.spend()
    now[0] += 1.0
    assert budget.spend() and not budget.spend()
    now[0] += 3600
    assert sum(budget.spend() for _ in range(100)) == 20  # refilled up to the burst only
