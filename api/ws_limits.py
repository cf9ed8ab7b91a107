"""Caps on the dashboard's WebSockets of one API process: in all, and per client IP (an IPv6 client
counts per /64, what one customer line usually gets), on top of the per-seller cap in routes/live.py.
Without them one client with one valid token, or many tokens, could hold every socket the process can
serve. A client message is at most ``ws_max_message_bytes`` (the dashboard sends nothing but pings), and a
socket may send ``MESSAGES_BURST`` messages, then ``MESSAGES_PER_S`` a second (``MessageBudget``): one
socket sending tiny frames as fast as it could (~120k a second) took ~0.3 of a core of the API's event
loop and delayed another seller's snapshots from ~10 ms to ~2 s.

Close codes: 1013 (try again later) when the process is full, 1008 (policy violation) when one IP holds
its share or a socket sends too many messages, 1009 (message too big) for an oversized message; each with
a reason naming the limit.
"""

from __future__ import annotations

import ipaddress
import time

from starlette.websockets import WebSocket

from livemetrics.forwarded import forwarded_client
from livemetrics.token_bucket import TokenBucket


def client_key(peer: str | None, forwarded_for: str | None, trusted: list[str]) -> str:
    """The client a socket counts against: the peer, or behind a trusted proxy the right-most
    X-Forwarded-For hop that is not a trusted proxy and is an IP address (``livemetrics/forwarded.py``,
    as the gateway reads it); an IPv6 address as its /64."""
    client = forwarded_client(peer or "", forwarded_for, trusted)
    if client.address is not None and client.address.version == 6:
        return str(ipaddress.ip_network(f"{client.address}/64", strict=False))
    return client.ip


class Slots:
    """Sockets held, in all and per client (event loop only: no lock needed)."""

    def __init__(self, max_total: int, max_per_client: int):
        self.max_total, self.max_per_client = max_total, max_per_client
        self.total = 0
        self.per_client: dict[str, int] = {}

    def refusal(self, client: str) -> tuple[int, str] | None:
        if self.total >= self.max_total:
            return 1013, f"server full: {self.max_total} dashboards open (LIVEMETRICS_WS_MAX_TOTAL); try again later"
        if self.per_client.get(client, 0) >= self.max_per_client:
            return 1008, f"too many dashboards from one address ({self.max_per_client}, LIVEMETRICS_WS_MAX_PER_IP)"
        return None

    def hold(self, client: str) -> None:
        self.total += 1
        self.per_client[client] = self.per_client.get(client, 0) + 1

    def release(self, client: str) -> None:
        self.total -= 1
        n = self.per_client.get(client, 0) - 1
        if n > 0:
            self.per_client[client] = n
        else:
            self.per_client.pop(client, None)


def slots_of(app) -> Slots:
    slots = getattr(app.state, "ws_slots", None)
    if slots is None:  # made on first use, on the event loop
        s = app.state.settings
        slots = app.state.ws_slots = Slots(s.ws_max_total, s.ws_max_per_ip)
    return slots


def ws_client(ws: WebSocket) -> str:
    return client_key(
        ws.client.host if ws.client else None, ws.headers.get("x-forwarded-for"), ws.app.state.settings.trusted_proxies
    )


def oversized(message: dict, limit: int) -> bool:
    """Whether a received ``websocket.receive`` message is over ``limit`` bytes."""
    text, data = message.get("text"), message.get("bytes")
    if text is not None:  # a character is 1 to 4 bytes: encode only when the length cannot tell
        return len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit)
    return data is not None and len(data) > limit


MESSAGES_BURST = 20
MESSAGES_PER_S = 1.0


class MessageBudget(TokenBucket):
    """Messages a client may send on one socket: ``burst``, then ``rate`` a second."""

    def __init__(self, burst: float = MESSAGES_BURST, rate: float = MESSAGES_PER_S, clock=time.monotonic):
        super().__init__(burst, rate, clock)

    def reason(self) -> str:
        return (
            f"too many client messages: at most {self.burst:g}, then {self.rate:g} a second (this socket only pushes)"
        )
