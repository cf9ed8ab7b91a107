"""WebSocket tickets (api/ws_tickets.py): usable once, before they expire, for their own seller, only
when signed by this deployment; memory bounded by the cap; garbage is refused with a reason, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.ws_tickets import PREFIX, TicketBook, TicketRefused, TicketsFull, TooManyForKey, ticket_key
from tests.support.manual_clock import ManualClock

KEY = ticket_key("k" * 40)


def book(
    clock: ManualClock, ttl: float = 30.0, cap: int = 100, key: bytes = KEY, per_key: int | None = None
) -> TicketBook:
    return TicketBook(key, ttl, cap, clock=clock, per_key=per_key)


def refusal(fn) -> tuple[int, str]:
    with pytest.raises(TicketRefused) as exc:
        fn()
    return exc.value.code, exc.value.reason


def test_a_ticket_opens_its_sellers_socket_once():
    b = book(ManualClock())
    ticket, ttl = b.issue("token", "key1", "shop-a")
    assert ticket.startswith(PREFIX) and ttl == 30.0
    claims = b.redeem(ticket, "shop-a")
    assert (claims.kind, claims.key_id, claims.seller_id) == ("token", "key1", "shop-a")
    code, reason = refusal(lambda: b.redeem(ticket, "shop-a"))
    assert code == 4401 and "already used" in reason


def test_another_sellers_path_is_refused_and_does_not_use_the_ticket_up():
    b = book(ManualClock())
    ticket, _ = b.issue("token", "key1", "shop-a")
    assert refusal(lambda: b.redeem(ticket, "shop-b"))[0] == 4404
    assert b.redeem(ticket, "shop-a").seller_id == "shop-a"


def test_an_expired_ticket_is_refused():
    clock = ManualClock()
    b = book(clock, ttl=30)
    ticket, _ = b.issue("admin", "admin", "shop-a")
    clock.now += 30.5
    code, reason = refusal(lambda: b.redeem(ticket, "shop-a"))
    assert code == 4401 and "expired" in reason


def test_another_replica_with_the_same_secret_accepts_it_and_another_secret_does_not():
    clock = ManualClock()
    ticket, _ = book(clock).issue("token", "key1", "shop-a")
    assert book(clock).redeem(ticket, "shop-a").key_id == "key1"
    code, reason = refusal(lambda: book(clock, key=ticket_key("other" * 8)).redeem(ticket, "shop-a"))
    assert code == 4401 and reason == "invalid WebSocket ticket"


def test_a_ticket_valid_far_beyond_the_lifetime_is_refused():
    clock = ManualClock()
    long_lived, _ = book(clock, ttl=300).issue("token", "key1", "shop-a")
    assert "too far ahead" in refusal(lambda: book(clock, ttl=30).redeem(long_lived, "shop-a"))[1]


def test_issuing_stops_at_the_cap_until_tickets_expire():
    clock = ManualClock()
    b = book(clock, ttl=30, cap=3)
    for _ in range(3):
        b.issue("token", "key1", "shop-a")
    with pytest.raises(TicketsFull):
        b.issue("token", "key1", "shop-a")
    clock.now += 31
    b.issue("token", "key1", "shop-a")


def test_redeeming_stops_at_the_cap_of_remembered_tickets_until_they_expire():
    clock = ManualClock()
    issuer, redeemer = book(clock, cap=10), book(clock, cap=3)
    tickets = [issuer.issue("token", "key1", "shop-a")[0] for _ in range(5)]
    for t in tickets[:3]:
        redeemer.redeem(t, "shop-a")
    with pytest.raises(TicketsFull):
        redeemer.redeem(tickets[3], "shop-a")
    clock.now += 31  # the used ones expired (forgetting them is safe: expiry refuses them now)
    fresh = issuer.issue("token", "key1", "shop-a")[0]
    assert redeemer.redeem(fresh, "shop-a").seller_id == "shop-a"
    assert "expired" in refusal(lambda: redeemer.redeem(tickets[0], "shop-a"))[1]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_change_to_a_ticket_is_refused(data):
    b = book(ManualClock())
    ticket, _ = b.issue("token", "key1", "shop-a")
    i = data.draw(st.integers(0, len(ticket) - 1), label="position")
    c = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="), label="char")
    changed = ticket[:i] + c + ticket[i + 1 :]
    if changed == ticket:
        return
    # The MAC covers the payload's text, not its decoded bytes: even a change in base64 padding bits fails.
    code, _ = refusal(lambda: b.redeem(changed, "shop-a"))
    assert code == 4401


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_garbage_is_refused_with_a_reason(text):
    b = book(ManualClock())
    for candidate in (text, PREFIX + text, PREFIX + text + "." + text):
        code, reason = refusal(lambda c=candidate: b.redeem(c, "shop-a"))
        assert code == 4401 and reason


def test_a_token_holds_at_most_its_share_until_its_tickets_expire():
    clock = ManualClock()
    b = book(clock, ttl=30, cap=10, per_key=3)
    for _ in range(3):
        b.issue("token", "key1", "shop-a")
    with pytest.raises(TooManyForKey):
        b.issue("token", "key1", "shop-a")
    for _ in range(3):  # another token's share is its own
        b.issue("token", "key2", "shop-b")
    clock.now += 30.5  # all expired: the shares are free again, and nothing is kept of them
    assert [b.issue("token", "key1", "shop-a")[1] for _ in range(3)] == [30.0] * 3
    assert b._per_key == {"key1": 3}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 20)), max_size=60))
def test_the_shares_are_the_unexpired_tickets_per_key(steps):
    clock = ManualClock()
    b = book(clock, ttl=30, cap=1000, per_key=1000)
    held: list[tuple[float, str]] = []
    for key, wait in steps:
        clock.now += wait
        b.issue("token", key, "shop")
        held = [(e, k) for e, k in held if e >= clock.now] + [(clock.now + 30, key)]
        expected: dict[str, int] = {}
        for _, k in held:
            expected[k] = expected.get(k, 0) + 1
        assert b._per_key == expected
