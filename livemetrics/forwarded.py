"""Who a request comes from behind trusted proxies: the one reading of ``X-Forwarded-For`` that the
gateway (its client IP, stored hashed and rate-limited per client) and the API (its WebSocket caps per
client) both use.

The client is the socket peer, or, when the peer is a trusted proxy, the right-most hop that is not a
trusted proxy. That hop counts only when it is an IP address (``IP:port`` and ``[IPv6]:port``, as some
proxies write them, count as their IP; returned in canonical form). Anything else (``unknown``, a name, a
script: what a client sent, passed on by a proxy that does not append its peer's address) is never the
client: the peer is, as without the header, so no string a client makes up becomes a client of its own.

At most ``MAX_HOPS`` hops are read, from the right: a longer run of trusted hops is no real chain of
proxies, and the peer is the client, as when every hop is trusted. A header of 64 KiB (the head's limit)
holds ~7,000 hops; splitting and walking all of them cost ~30-100 ms of the event loop per request for a
sender inside the trusted networks (or behind a proxy that does not append), now ~20 us.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import NamedTuple

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_HOPS = 32  # a real chain has a handful of proxies (CDN, load balancer, nginx)


class Client(NamedTuple):
    """The client's address (the peer's text when it is no IP address) and the hop refused, if one was."""

    ip: str
    address: Address | None
    refused_hop: str | None = None


@lru_cache(maxsize=64)
def trusted_nets(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def hop_address(hop: str) -> Address | None:
    """The IP address an X-Forwarded-For hop (or a peer) names (``1.2.3.4``, ``1.2.3.4:5678``,
    ``2001:db8::1``, ``[2001:db8::1]:443``), else None."""
    hop = hop.strip()
    if hop.startswith("["):
        end = hop.find("]")
        if end < 0 or not (end == len(hop) - 1 or (hop[end + 1] == ":" and hop[end + 2 :].isdigit())):
            return None
        hop = hop[1:end]
    elif hop.count(":") == 1:
        hop, _, port = hop.partition(":")
        if not port.isdigit():
            return None
    try:
        return ipaddress.ip_address(hop)
    except ValueError:
        return None


def forwarded_client(peer: str, forwarded_for: str | None, trusted: list[str]) -> Client:
    """The client of a request from ``peer`` with this ``X-Forwarded-For`` (module docstring)."""
    nets = trusted_nets(tuple(trusted))
    peer_address = hop_address(peer)
    itself = Client(peer, peer_address)
    if not forwarded_for or peer_address is None or not any(peer_address in n for n in nets):
        return itself
    for hop in reversed(forwarded_for.rsplit(",", MAX_HOPS)[-MAX_HOPS:]):
        hop = hop.strip()
        if not hop:
            continue
        address = hop_address(hop)
        if address is None:
            return itself._replace(refused_hop=hop)
        if not any(address in n for n in nets):
            return Client(str(address), address)
    return itself
