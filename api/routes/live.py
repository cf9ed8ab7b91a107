"""Live views: the current snapshot over REST and a push stream over WebSocket."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.deps import FeedDep, SellerId, SettingsDep, may_read, ws_principal
from livemetrics import metrics
from streams.snapshot import build_snapshot
from streams.state import Windows

router = APIRouter(tags=["live"])
HEARTBEAT_S = 15.0


def current_snapshot(feed, settings, seller_id: str) -> dict:
    snap = feed.latest.get(seller_id)
    if snap is None:  # nothing seen for this seller yet: all zero, and say whether we are still loading
        w = Windows(live_ms=settings.live_window_s * 1000, timeout_ms=settings.session_timeout_s * 1000)
        snap = build_snapshot(seller_id, {}, w, recovering=not feed.caught_up.is_set())
    return snap


@router.get("/v1/sellers/{seller_id}/live")
async def live(seller_id: SellerId, feed: FeedDep, settings: SettingsDep) -> dict:
    """The seller's current live snapshot (counts of distinct sessions, each with its window)."""
    return current_snapshot(feed, settings, seller_id)


@router.websocket("/v1/sellers/{seller_id}/live/ws")
async def live_ws(ws: WebSocket, seller_id: str) -> None:
    """A snapshot on connect, then every new snapshot and every alert as it happens."""
    app = ws.app
    settings, feed = app.state.settings, app.state.feed
    principal = ws_principal(ws)
    origin = ws.headers.get("origin")
    allowed = settings.allowed_origins
    if origin and "*" not in allowed and origin not in allowed:
        await ws.close(code=4403, reason="origin not allowed")
        return
    if principal is None:
        await ws.close(code=4401, reason="missing, unknown, expired or revoked token")
        return
    if not may_read(principal, seller_id):
        await ws.close(code=4404, reason="no such seller for this token")
        return
    if feed.count(seller_id) >= settings.ws_max_per_seller:
        await ws.close(code=4429, reason="too many dashboards open for this seller")
        return
    await ws.accept()
    sub = feed.subscribe(seller_id)
    try:
        await ws.send_json({"type": "snapshot", "data": current_snapshot(feed, settings, seller_id)})
        while True:
            try:
                await asyncio.wait_for(sub.wake.wait(), HEARTBEAT_S)
            except asyncio.TimeoutError:
                await ws.send_json({"type": "heartbeat", "at": int(time.time() * 1000)})
                continue
            sub.wake.clear()
            if not principal.is_admin and app.state.registry.authenticate_id(principal.key_id) is None:
                await ws.close(code=4401, reason="token revoked")
                return
            while sub.alerts:
                await ws.send_json({"type": "alert", "data": sub.alerts.popleft()})
            if sub.overflowed:
                await ws.close(code=4408, reason="too slow to receive alerts: reconnect")
                return
            snap, sub.snapshot = sub.snapshot, None
            if snap is not None:
                await ws.send_json({"type": "snapshot", "data": snap})
                if "as_of_ms" in snap:
                    metrics.PUSH_LATENCY.observe(max(0.0, time.time() - snap["as_of_ms"] / 1000))
    except WebSocketDisconnect:
        pass
    finally:
        feed.unsubscribe(sub)
