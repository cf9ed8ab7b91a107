"""Annotated dependencies for the API routes: settings, services on app state, and access checks."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket

from api import rate_limit
from api.live_feed import LiveFeed
from api.ws_tickets import Claims, TicketBook, TicketRefused, TicketsFull
from livemetrics.keys import KeyRegistry, Principal
from livemetrics.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _feed(request: Request) -> LiveFeed:
    return request.app.state.feed


def _tickets(request: Request) -> TicketBook:
    return request.app.state.tickets


# Tokens only travel in the Authorization header: a URL ends up in proxy access logs, browser history and
# Referer headers. A `?token=` is refused (not ignored) so that an old client learns why it fails.
URL_TOKEN = (
    "tokens are not accepted in the URL (proxies and browsers log URLs): send "
    "`Authorization: Bearer <token>`; a browser's WebSocket uses `?ticket=` from POST /v1/ws-tickets"
)


def presented_token(headers) -> str:
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def principal_for(token: str, settings: Settings, registry: KeyRegistry) -> Principal | None:
    admin = settings.admin_token.get_secret_value()
    if admin and token and hmac.compare_digest(token.encode(), admin.encode()):
        return Principal(seller_id=None, kind="admin", key_id="admin")
    rec = registry.authenticate(token, ("token",)) if token else None
    if rec is None:
        return None
    return Principal(seller_id=rec.seller_id, kind="token", key_id=rec.key_id, can_read_pii=rec.can_read_pii)


# A token not found while the process has not read the keys yet (started while Kafka is away) may well be
# valid: 503, not the 401 "unknown token" it got, after which a dashboard asks its user for another token.
KEYS_NOT_READ = "this API process has not read its tokens yet (Kafka unreachable, or starting): retry in a few seconds"


def keys_read(registry) -> bool:
    return bool(getattr(registry, "ready", True))


def may_read(p: Principal, seller_id: str) -> bool:
    return p.is_admin or p.seller_id == seller_id


async def _principal(request: Request) -> AsyncIterator[Principal]:
    """The request's principal, counted against its rate, for the request's whole run one of its token's
    turns (rate_limit.turn: at most api_token_concurrency of a token's requests under way)."""
    p = _authenticated(request)
    async with rate_limit.turn(request.app, p):
        yield p


def _authenticated(request: Request) -> Principal:
    if "token" in request.query_params:
        raise HTTPException(401, URL_TOKEN)
    token = presented_token(request.headers)
    if not token:
        raise HTTPException(401, "missing token: send `Authorization: Bearer <seller token>`")
    p = principal_for(token, request.app.state.settings, request.app.state.registry)
    if p is None:
        if not keys_read(request.app.state.registry):
            raise HTTPException(503, KEYS_NOT_READ, headers={"Retry-After": "5"})
        raise HTTPException(401, "unknown, expired or revoked token")
    rate_limit.check(request.app, p)  # per token: 429 + Retry-After past LIVEMETRICS_API_RATE_PER_S
    return p


def _seller_access(seller_id: str, p: Annotated[Principal, Depends(_principal)]) -> str:
    # 404, not 403: a token of one seller learns nothing about whether another seller exists.
    if not may_read(p, seller_id):
        raise HTTPException(404, "no such seller for this token")
    return seller_id


def ws_principal(ws: WebSocket) -> Principal:
    """Who opens this socket: a browser by `?ticket=` (POST /v1/ws-tickets), any other client by the
    Authorization header. ``TicketRefused`` (close code, reason) otherwise. Remembered on the connection,
    because a ticket can be redeemed only once."""
    if _WS_PRINCIPAL not in ws.scope:
        ws.scope[_WS_PRINCIPAL] = _ws_authenticate(ws)
    return ws.scope[_WS_PRINCIPAL]


_WS_PRINCIPAL = "livemetrics.principal"


def _ws_authenticate(ws: WebSocket) -> Principal:
    settings, registry = ws.app.state.settings, ws.app.state.registry
    if "token" in ws.query_params:
        raise TicketRefused(4401, URL_TOKEN)
    ticket = ws.query_params.get("ticket")
    if ticket:
        try:
            claims = ws.app.state.tickets.redeem(ticket, ws.path_params.get("seller_id", ""))
        except TicketsFull as exc:
            raise TicketRefused(1013, f"{exc}: try again in a few seconds") from None
        p = ticket_principal(claims, settings, registry)
        if p is None:
            raise TicketRefused(4401, "the token this ticket was issued to is expired or revoked")
        return p
    token = presented_token(ws.headers)
    if not token:
        raise TicketRefused(
            4401,
            "missing credentials: `?ticket=` from POST /v1/ws-tickets, or "
            "`Authorization: Bearer <token>` for a client that can set headers",
        )
    p = principal_for(token, settings, registry)
    if p is None:
        if not keys_read(registry):
            raise TicketRefused(1013, KEYS_NOT_READ)
        raise TicketRefused(4401, "unknown, expired or revoked token")
    return p


def ticket_principal(claims: Claims, settings: Settings, registry: KeyRegistry) -> Principal | None:
    """The principal a ticket was issued to, if its token is still valid now."""
    if claims.kind == "admin":  # only while an admin token is configured
        admin = settings.admin_token.get_secret_value()
        return Principal(seller_id=None, kind="admin", key_id="admin") if admin else None
    rec = registry.authenticate_id(claims.key_id)
    if rec is None or rec.kind != "token":
        return None
    return Principal(seller_id=rec.seller_id, kind="token", key_id=rec.key_id, can_read_pii=rec.can_read_pii)


SettingsDep = Annotated[Settings, Depends(_settings)]
FeedDep = Annotated[LiveFeed, Depends(_feed)]
TicketsDep = Annotated[TicketBook, Depends(_tickets)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
SellerId = Annotated[str, Depends(_seller_access)]
