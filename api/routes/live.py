"""Live views: the current snapshot over REST and a push stream over WebSocket."""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from api import rate_limit, ws_limits
from api.deps import FeedDep, PrincipalDep, SellerId, SettingsDep, may_read, ws_principal
from api.privacy import alert_for
from api.responses import AUTH, SELLER
from api.ws_tickets import TicketRefused
from livemetrics import metrics
from livemetrics.snapshot import empty_snapshot

router = APIRouter(tags=["live"], responses=SELLER, dependencies=AUTH)
log = logging.getLogger("livemetrics.api.ws")
HEARTBEAT_S = 15.0


def current_snapshot(feed, settings, seller_id: str) -> dict:
    snap = feed.latest.get(seller_id)
    loading = not feed.caught_up.is_set()
    if snap is None:  # nothing seen for this seller yet: all zero, and say whether we are still loading
        return empty_snapshot(seller_id, settings, recovering=loading)
    # Until the feed has read the compacted topic to its end, the newest snapshot may still be ahead.
    return {**snap, "recovering": True} if loading and not snap.get("recovering") else snap


@router.get("/v1/sellers/{seller_id}/live")
async def live(seller_id: SellerId, feed: FeedDep, settings: SettingsDep) -> dict:
    """The seller's current live snapshot (counts of distinct sessions, each with its window)."""
    return current_snapshot(feed, settings, seller_id)


@router.get("/v1/sellers/{seller_id}/alerts")
async def recent_alerts(seller_id: SellerId, feed: FeedDep, principal: PrincipalDep) -> dict:
    """The seller's most recent alerts seen by this replica (newest first; personal data only if allowed)."""
    return {"items": [alert_for(principal, a) for a in feed.recent_alerts.get(seller_id, ())]}


async def _watch_disconnect(ws: WebSocket, sub, max_bytes: int) -> None:
    """Read (and ignore) what the client sends, so that a closed dashboard frees its slot at once
    instead of at the next send; a message over ``max_bytes``, or past the socket's budget of messages,
    closes the socket (api/ws_limits.py)."""
    budget = ws_limits.MessageBudget()
    try:
        while (msg := await ws.receive())["type"] != "websocket.disconnect":
            if ws_limits.oversized(msg, max_bytes):
                await ws.close(
                    code=1009,
                    reason=f"client messages are at most {max_bytes} bytes (LIVEMETRICS_WS_MAX_MESSAGE_BYTES)",
                )
                break
            if not budget.spend():
                log.info("ws closed: too many client messages", extra={"seller_id": ws.path_params.get("seller_id")})
                await ws.close(code=1008, reason=budget.reason())
                break
    except Exception:  # noqa: BLE001 - any receive failure means the client is gone
        pass
    sub.closed = True
    sub.wake.set()


def _refusal(ws: WebSocket, seller_id: str, feed, settings) -> tuple[int, str] | None:
    """Why this handshake is refused (close code, reason), or None to accept it."""
    origin = ws.headers.get("origin")
    allowed = settings.allowed_origins
    # Browsers always send Origin; its absence means a non-browser client, which the token alone guards.
    if origin and "*" not in allowed and origin not in allowed:
        return 4403, "origin not allowed"
    try:
        principal = ws_principal(ws)  # redeems a `?ticket=` (once); the handler below reuses the result
    except TicketRefused as exc:
        return exc.code, exc.reason
    if not may_read(principal, seller_id):
        return 4404, "no such seller for this token"
    try:  # a handshake counts as a request of the token: each one sends a snapshot and the recent alerts
        rate_limit.check(ws.app, principal)
    except HTTPException as exc:
        return 4429, str(exc.detail)
    if feed.count(seller_id) >= settings.ws_max_per_seller:
        return 4429, "too many dashboards open for this seller"
    return None


@router.websocket("/v1/sellers/{seller_id}/live/ws")
async def live_ws(ws: WebSocket, seller_id: str) -> None:
    """A snapshot on connect, then every new snapshot and every alert as it happens."""
    app = ws.app
    settings, feed, registry = app.state.settings, app.state.feed, app.state.registry
    slots, client = ws_limits.slots_of(app), ws_limits.ws_client(ws)
    full = slots.refusal(client)
    if full:  # accepted, then closed: the client (and a dashboard's backoff) sees the code and reason
        log.info("ws refused", extra={"seller_id": seller_id, "code": full[0], "reason": full[1]})
        await ws.accept()
        await ws.close(code=full[0], reason=full[1])
        return
    refused = _refusal(ws, seller_id, feed, settings)
    if refused:
        log.info("ws refused", extra={"seller_id": seller_id, "code": refused[0], "reason": refused[1]})
        await ws.close(code=refused[0], reason=refused[1])
        return
    principal = ws_principal(ws)
    sub = feed.subscribe(seller_id)  # before accept: the per-seller cap holds under concurrent handshakes
    slots.hold(client)  # so do the process's and the client's caps (no await since their check)
    reader: asyncio.Task | None = None
    try:
        await ws.accept()
        reader = asyncio.create_task(_watch_disconnect(ws, sub, settings.ws_max_message_bytes))

        def still_valid() -> bool:
            return principal.is_admin or registry.authenticate_id(principal.key_id) is not None

        await ws.send_json({"type": "snapshot", "data": current_snapshot(feed, settings, seller_id)})
        # The recent alerts, oldest first, marked as a replay so that a reconnecting dashboard fills its
        # feed without raising toasts again.
        for alert in reversed(list(feed.recent_alerts.get(seller_id, ()))):
            await ws.send_json({"type": "alert", "replay": True, "data": alert_for(principal, alert)})
        while True:
            try:
                await asyncio.wait_for(sub.wake.wait(), HEARTBEAT_S)
            except TimeoutError:
                if not still_valid():  # expiry has no event of its own: check it on every heartbeat
                    await ws.close(code=4401, reason="token expired or revoked")
                    return
                await ws.send_json({"type": "heartbeat", "at": int(time.time() * 1000)})
                continue
            sub.wake.clear()
            if sub.closed:
                return
            if not still_valid():
                await ws.close(code=4401, reason="token expired or revoked")
                return
            while sub.alerts:
                await ws.send_json({"type": "alert", "data": alert_for(principal, sub.alerts.popleft())})
            if sub.overflowed:
                await ws.close(code=4408, reason="too slow to receive alerts: reconnect")
                return
            pending, sub.snapshot = sub.snapshot, None
            if pending is not None:
                snap, message = pending
                await ws.send_text(message)
                if "as_of_ms" in snap:
                    metrics.PUSH_LATENCY.observe(max(0.0, time.time() - snap["as_of_ms"] / 1000))
    except (WebSocketDisconnect, RuntimeError):  # RuntimeError: sending on a socket the client closed
        pass
    finally:
        feed.unsubscribe(sub)
        slots.release(client)
        if reader is not None:
            reader.cancel()
