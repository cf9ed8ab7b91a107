"""The client IP behind a trusted proxy (producers/gateway/enrich.py::client_ip): the right-most
X-Forwarded-For hop that is not a trusted proxy, and only when it is an IP address.

Before, any text in that place was the client's "IP": behind a trusted proxy that passes the client's own
header on instead of appending its peer's address (or writes `unknown`), a client could send
`X-Forwarded-For: <script>` and have it stored as `client.ip` on its payment_failed events and hashed
into `ip_hash`, or send a new string with every request and get a per-client rate-limit bucket of its own
each time. Now such a hop is never the client: the peer (the proxy) is, as without the header.
"""

from __future__ import annotations

import ipaddress
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemetrics.once_per import OncePer
from producers.gateway import enrich
from producers.gateway.client_limit import client_key
from producers.gateway.enrich import client_ip

PROXY = "10.0.0.2"
TRUSTED = ["10.0.0.0/8"]


@pytest.mark.parametrize(
    "forwarded_for",
    [
        "unknown",
        "<script>alert(1)</script>",
        "evil.example.com",
        "203.0.113.1 OR 1=1",
        "6.6.6.6, unknown",  # the right-most untrusted hop decides: no address, so the peer
        "unknown, 10.0.0.3",  # behind a second trusted proxy
        "203.0.113.1:abc",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "_",
        "x" * 5000,
    ],
)
def test_a_hop_that_is_no_ip_address_is_never_the_client(forwarded_for):
    assert client_ip(PROXY, forwarded_for, TRUSTED) == PROXY


@pytest.mark.parametrize(
    "forwarded_for, client",
    [
        ("203.0.113.1", "203.0.113.1"),
        ("6.6.6.6, 203.0.113.1, 10.0.0.3", "203.0.113.1"),  # spoofed hops left of the real one: ignored
        ("unknown, 203.0.113.1", "203.0.113.1"),  # a bad hop left of the client's: never reached
        ("203.0.113.1:51234", "203.0.113.1"),  # IP:port (Azure Application Gateway, IIS ARR)
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),  # canonical form: one client, one hash
        (" 203.0.113.1 ,, 10.0.0.3 ", "203.0.113.1"),
        ("10.0.0.4, 10.0.0.3", PROXY),  # every hop a trusted proxy: the peer
    ],
)
def test_an_ip_address_hop_is_the_client(forwarded_for, client):
    assert client_ip(PROXY, forwarded_for, TRUSTED) == client


def test_only_a_trusted_peer_is_believed():
    assert client_ip("198.51.100.7", "unknown", TRUSTED) == "198.51.100.7"
    assert client_ip("198.51.100.7", "203.0.113.1", TRUSTED) == "198.51.100.7"
    assert client_ip(None, "203.0.113.1", TRUSTED) is None


def test_a_client_sending_new_strings_shares_the_proxys_rate_limit_bucket():
    keys = {client_key(client_ip(PROXY, f"visitor-{i}", TRUSTED)) for i in range(100)}
    assert keys == {PROXY}


def test_a_hop_that_is_no_address_is_logged_at_most_once_a_minute(caplog, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(enrich, "_no_address_said", OncePer(enrich._NO_ADDRESS_EVERY_S, lambda: now[0]))
    with caplog.at_level(logging.WARNING, logger="livemetrics.gateway"):
        for _ in range(50):
            client_ip(PROXY, "unknown\nforged log line", TRUSTED)
        now[0] += 61
        client_ip(PROXY, "unknown", TRUSTED)
    lines = [r.getMessage() for r in caplog.records if r.name == "livemetrics.gateway"]
    assert len(lines) == 2, lines
    assert "no IP address ('unknown\\nforged log line')" in lines[0] and PROXY in lines[0]  # repr: one line


@given(st.text(max_size=60))
def test_whatever_a_client_sends_the_client_ip_is_an_ip_address(forwarded_for):
    ip = client_ip(PROXY, forwarded_for, TRUSTED)
    assert ip is not None
    ipaddress.ip_address(ip)  # raises when it is not one
