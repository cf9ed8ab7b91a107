"""The seller dashboard: static HTML/JS/CSS in ``api/dashboard`` served at ``/dashboard/`` (no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
# Everything comes from this origin (no CDN); the page talks only to this API over HTTP and WebSocket.
CSP = ("default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; "
       "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

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
        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-cache"),
                ]
            await send(message)

        await self.app(scope, receive, send_wrapper)


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/dashboard/", _Hardened(StaticFiles(directory=DASHBOARD_DIR, html=True)), name="dashboard")
