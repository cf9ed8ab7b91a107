"""Annotated dependencies for the API routes: settings, services on app state, and access checks."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket

from api.live_feed import LiveFeed
from livemetrics.keys import KeyRegistry, Principal
from livemetrics.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _feed(request: Request) -> LiveFeed:
    return request.app.state.feed


def presented_token(headers, query_params) -> str:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return query_params.get("token", "")


def principal_for(token: str, settings: Settings, registry: KeyRegistry) -> Principal | None:
    admin = settings.admin_token.get_secret_value()
    if admin and token and hmac.compare_digest(token.encode(), admin.encode()):
        return Principal(seller_id=None, kind="admin", key_id="admin")
    rec = registry.authenticate(token, ("token",)) if token else None
    if rec is None:
        return None
    return Principal(seller_id=rec.seller_id, kind="token", key_id=rec.key_id, can_read_pii=rec.can_read_pii)


def may_read(p: Principal, seller_id: str) -> bool:
    return p.is_admin or p.seller_id == seller_id


def _principal(request: Request) -> Principal:
    token = presented_token(request.headers, request.query_params)
    if not token:
        raise HTTPException(401, "missing token: send `Authorization: Bearer <seller token>`")
    p = principal_for(token, request.app.state.settings, request.app.state.registry)
    if p is None:
        raise HTTPException(401, "unknown, expired or revoked token")
    return p


def _seller_access(seller_id: str, p: Annotated[Principal, Depends(_principal)]) -> str:
    # 404, not 403: a token of one seller learns nothing about whether another seller exists.
    if not may_read(p, seller_id):
        raise HTTPException(404, "no such seller for this token")
    return seller_id


def ws_principal(ws: WebSocket) -> Principal | None:
    token = presented_token(ws.headers, ws.query_params)
    return principal_for(token, ws.app.state.settings, ws.app.state.registry) if token else None


SettingsDep = Annotated[Settings, Depends(_settings)]
FeedDep = Annotated[LiveFeed, Depends(_feed)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
SellerId = Annotated[str, Depends(_seller_access)]
