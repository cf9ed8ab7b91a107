"""The seller dashboard: static HTML/JS/CSS in ``api/dashboard`` served at ``/dashboard/`` (no build step)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
# Everything comes from this origin (no CDN); the page talks only to this API over HTTP and WebSocket.
# WebSockets only to the page's own host: 'self' covers ws(s) of the same host in CSP Level 3, but older
# browsers (Safari before 15.4) do not apply it to ws:, so the ws:// and wss:// URLs of the host the page
# was loaded from are named too (never the bare schemes, which allowed any host).
CSP = (
    "default-src 'self'; connect-src {connect}; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HOST = re.compile(r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def csp_for(host: str | None) -> str:
    """The policy for a page loaded from ``host`` (the request's Host header; anything that is not a
    plain host[:port] gets 'self' alone, so a forged header cannot add a source or a directive)."""
    if host and _HOST.fullmatch(host):
        return CSP.format(connect=f"'self' ws://{host} wss://{host}")
    return CSP.format(connect="'self'")


router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", include_in_schema=False)
async def dashboard_root() -> RedirectResponse:
    """The dashboard's entry page."""
    return RedirectResponse("/dashboard/", status_code=307)


class _Hardened:
    """Security headers on every dashboard file; the token lives in sessionStorage, never in a cookie."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
        csp = csp_for(host).encode()

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [
                    (b"content-security-policy", csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-cache"),
                ]
            await send(message)

        await self.app(scope, receive, send_wrapper)


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/dashboard/", _Hardened(StaticFiles(directory=DASHBOARD_DIR, html=True)), name="dashboard")
