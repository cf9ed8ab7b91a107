"""Short-lived, single-use tickets that open the dashboard's WebSocket, so that a read token never goes in
a URL (browsers cannot set headers on a WebSocket, and proxies, browsers and referrers keep URLs).

A ticket is signed, not stored: ``lm_wt_<payload>.<mac>``, the payload is base64url JSON of the
principal (kind and key id), the seller it may watch, its expiry (epoch ms) and a random nonce; the MAC
is HMAC-SHA256 under a key derived from the key-encryption key, which every API replica already shares
(and which every process refuses to start with when it is a placeholder). Any replica verifies any
replica's ticket. Single use is per process: each process remembers the nonces it redeemed until they
expire (docs/security.md, Tokens in URLs, says what that means with several replicas).

Memory is bounded: at most ``cap`` tickets issued and not yet expired, and at most ``cap`` redeemed
nonces not yet expired, per process; past either, ``TicketsFull`` (the API answers 503 / closes 1013).
One token holds at most ``per_key`` of the issued ones (``TooManyForKey``, 429): without it one token at its
API rate filled ~660 a lifetime, so 16 tokens kept the book full and every dashboard of the process out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice

PREFIX = "lm_wt_"
# A ticket valid further ahead than its lifetime plus this is refused: only a replica whose clock is ahead
# (or that has a longer lifetime configured) issues one, and the used-nonce memory must not hold it long.
MAX_SKEW_S = 5.0
_MAX_TICKET_CHARS = 1024  # seller ids and key ids are short; anything longer is not ours


class TicketsFull(Exception):
    """This process holds its cap of unexpired tickets: try again in a few seconds."""


class TooManyForKey(Exception):
    """This token holds its share of unexpired tickets on this process: try again when one expires."""


class TicketRefused(Exception):
    """The ticket cannot open this socket; ``code`` is the WebSocket close code, the message says why."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class Claims:
    kind: str  # "admin" or "token" (a seller's read token)
    key_id: str
    seller_id: str  # the one seller whose live socket this ticket opens
    expires_ms: int
    nonce: str


def ticket_key(key_encryption_key: str) -> bytes:
    """The signing key: derived (domain-separated), so that a ticket MAC reveals nothing about the KEK."""
    return hmac.new(key_encryption_key.encode(), b"livemetrics ws-ticket v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TicketBook:
    """Issues and redeems tickets for one API process (asyncio code: one thread, no lock needed)."""

    def __init__(self, key: bytes, ttl_s: float, cap: int, clock=time.time, per_key: int | None = None):
        self._key, self.ttl_s, self.cap, self._clock = key, ttl_s, cap, clock
        self.per_key = cap if per_key is None else per_key
        # (expiry (epoch s), key id) of each ticket issued here, oldest first; and unexpired ones per key id
        self._issued: deque[tuple[float, str]] = deque()
        self._per_key: dict[str, int] = {}
        self._used: dict[str, float] = {}  # nonce -> expiry (epoch s) of each ticket redeemed here

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, kind: str, key_id: str, seller_id: str) -> tuple[str, float]:
        """A new ticket for (principal, seller) and its lifetime in seconds; ``TooManyForKey`` at the
        token's share, ``TicketsFull`` at the process's cap."""
        now = self._clock()
        while self._issued and self._issued[0][0] < now:  # constant lifetime: expiries come in order
            _, old = self._issued.popleft()
            if self._per_key[old] == 1:
                del self._per_key[old]
            else:
                self._per_key[old] -= 1
        if len(self._issued) >= self.cap:
            raise TicketsFull("too many WebSocket tickets outstanding on this API process")
        if self._per_key.get(key_id, 0) >= self.per_key:
            raise TooManyForKey(f"this token holds {self.per_key} unexpired WebSocket tickets on this API process")
        expires = now + self.ttl_s
        claims = {"k": kind, "i": key_id, "s": seller_id, "e": int(expires * 1000), "n": secrets.token_urlsafe(16)}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        self._issued.append((expires, key_id))
        self._per_key[key_id] = self._per_key.get(key_id, 0) + 1
        return f"{PREFIX}{payload}.{self._mac(payload)}", self.ttl_s

    def verify(self, ticket: str) -> Claims:
        """The claims of a ticket this deployment signed (expiry and use not checked); else ``TicketRefused``."""
        if not ticket.startswith(PREFIX) or len(ticket) > _MAX_TICKET_CHARS or ticket.count(".") != 1:
            raise TicketRefused(4401, "not a WebSocket ticket: get one with POST /v1/ws-tickets")
        payload, mac = ticket[len(PREFIX) :].split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise TicketRefused(4401, "invalid WebSocket ticket")
        try:
            c = json.loads(_unb64(payload))
            claims = Claims(kind=c["k"], key_id=c["i"], seller_id=c["s"], expires_ms=int(c["e"]), nonce=c["n"])
        except (ValueError, KeyError, TypeError, binascii.Error):  # signed by us, so only a format change
            raise TicketRefused(4401, "invalid WebSocket ticket") from None
        return claims

    def redeem(self, ticket: str, seller_id: str) -> Claims:
        """Use a ticket to open ``seller_id``'s socket: once, before it expires, for its own seller only.
        A refused ticket is not used up (a mistyped seller id does not burn it)."""
        claims = self.verify(ticket)
        # 4404 like a token of another seller: the ticket's holder learns nothing about other sellers.
        if claims.seller_id != seller_id:
            raise TicketRefused(4404, "no such seller for this ticket")
        now = self._clock()
        expires = claims.expires_ms / 1000
        if expires < now:
            raise TicketRefused(4401, "WebSocket ticket expired: get a new one with POST /v1/ws-tickets")
        if expires > now + self.ttl_s + MAX_SKEW_S:
            raise TicketRefused(4401, "WebSocket ticket expires too far ahead (clocks of the API replicas differ?)")
        for nonce in list(islice(self._used, 2)):  # roughly oldest first: drop a couple of expired ones per call
            if self._used[nonce] < now:
                del self._used[nonce]
        if claims.nonce in self._used:
            raise TicketRefused(4401, "WebSocket ticket already used: get a new one with POST /v1/ws-tickets")
        if len(self._used) >= self.cap:
            self._used = {n: e for n, e in self._used.items() if e >= now}
            if len(self._used) >= self.cap:
                raise TicketsFull("too many WebSocket tickets in use on this API process")
        self._used[claims.nonce] = expires
        return claims
