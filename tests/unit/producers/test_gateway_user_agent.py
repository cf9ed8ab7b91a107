"""The User-Agent header's card check (pure; the real gateway: tests/integration/test_gateway_card_headers.py)."""

from __future__ import annotations

from livemetrics.card_data import REDACTED
from livemetrics.settings import Settings
from producers.gateway.auth import RateLimiter
from producers.gateway.client_limit import ClientLimiter
from producers.gateway.events import EventsEndpoint
from producers.gateway.ingest import USER_AGENT_KEPT, stored_user_agent
from tests.support import factories as f


def test_a_card_number_in_what_is_kept_is_redacted_and_a_browsers_header_kept():
    assert stored_user_agent(f.CHROME) == f.CHROME
    assert stored_user_agent(f.CHROME + " 4111 1111 1111 1111") == REDACTED
    assert stored_user_agent("x" * 600) == "x" * USER_AGENT_KEPT
    # Cut at 512 characters: only what is stored is checked (12 of the 16 digits are not a card number).
    cut = "x" * (USER_AGENT_KEPT - 12) + "411111111111" + "1111"
    assert stored_user_agent(cut) == cut[:USER_AGENT_KEPT]


def test_the_user_agents_digit_groups_are_charged_with_the_bodys():
    s = Settings(dev_mode=True, client_ip_rate_per_s=50)
    ep = EventsEndpoint(s, state=None, limiter=RateLimiter(200), cors=None, client_limiter=ClientLimiter(50))
    ua = ("1 " * USER_AGENT_KEPT)[:USER_AGENT_KEPT]  # 256 one-digit groups: 2.56 events' worth
    ep._charge_validation("k", 200, "203.0.113.9", b"{}", spent_s=0.01, n=1, user_agent=ua)
    # The client's bucket (100 events: 2 s at 50/s) was charged the 1.56 events past what its 1 event paid.
    tokens, _ = ep.client_limiter._buckets._buckets["203.0.113.9"]
    assert abs(tokens - (100 - 1.56)) < 1e-9


def test_headers_are_cached_by_what_is_read_not_by_their_whole_length():
    from producers.gateway import enrich, ingest

    enrich._user_agent_info.cache_clear()
    ingest._stored_user_agent.cache_clear()
    head = f.CHROME + " " * (USER_AGENT_KEPT - len(f.CHROME))
    for i in range(50):  # 50 headers of ~64 KB that differ only past what is read: one entry each
        header = head + f"{i}" + "x" * 64_000
        assert stored_user_agent(header) == head and enrich.user_agent_info(header)[0] == "Chrome"
    assert enrich._user_agent_info.cache_info().currsize == 1
    assert ingest._stored_user_agent.cache_info().currsize == 1
