"""The gateway's HTTP surface: ``POST /v1/events``, the tracker, the demo storefront and health."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from livemetrics.contract import MAX_BATCH
from livemetrics.keys import KeyRegistry
from livemetrics.settings import Settings, get_settings
from producers.gateway.auth import Authenticator, RateLimiter
from producers.gateway.delivery import KafkaDelivery
from producers.gateway.events import EventsEndpoint

TRACKER_JS = Path(__file__).resolve().parent.parent / "tracker" / "t.js"


class Rejected(BaseModel):
    index: int
    error: str


class Accepted(BaseModel):
    accepted: int
    rejected: list[Rejected]


class Failure(BaseModel):
    error: str


_EVENTS_RESPONSES = {
    401: {"model": Failure, "description": "missing, unknown or revoked key; bad, stale or replayed signature"},
    403: {"model": Failure, "description": "backfill from a browser key"},
    413: {"model": Failure, "description": f"body over 1 MiB (bytes actually read) or batch over {MAX_BATCH}"},
    422: {"model": Failure, "description": "nothing valid: each error names the field and the event index"},
    429: {"model": Failure, "description": "the key is over its rate limit; see Retry-After"},
    503: {"model": Failure, "description": "Kafka cannot confirm delivery; retry with the same event ids after Retry-After"},
}
_EVENTS_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object",
    "description": f"One event of the v1 contract (docs/ingest.md, SPEC §3) or {{\"events\": [...]}} (max {MAX_BATCH}).",
}}}}}


class GatewayApp(FastAPI):
    """FastAPI, with ``POST /v1/events`` handed straight to its endpoint (see producers/gateway/events.py)."""

    events_endpoint: EventsEndpoint | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/events" and scope["method"] == "POST" \
                and self.events_endpoint is not None:
            try:
                await self.events_endpoint(scope, receive, send)
            except Exception:
                # What ServerErrorMiddleware would do (a 500 unless the response started); the server logs it.
                await _internal_error(send)
                raise
            return
        await super().__call__(scope, receive, send)


async def _internal_error(send) -> None:
    try:
        await send({"type": "http.response.start", "status": 500,
                    "headers": [(b"content-length", b"21"), (b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
    except Exception:  # noqa: BLE001 - the response had started: nothing more to say to the client
        pass


def create_gateway(settings: Settings | None = None, registry: KeyRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.registry = registry or KeyRegistry(settings).start()
        app.state.delivery = KafkaDelivery(settings)
        app.state.auth = Authenticator(app.state.registry, settings.signature_tolerance_s)
        try:
            yield
        finally:
            app.state.delivery.close()  # graceful shutdown: in-flight events are flushed
            if registry is None:
                app.state.registry.stop()

    app = GatewayApp(title="livemetrics gateway", version="1", lifespan=lifespan)

    cors_options = dict(allow_origins=settings.allowed_origins, allow_methods=["POST", "GET"],
                        allow_headers=["Authorization", "Content-Type", "X-Livemetrics-Key"], max_age=3600)
    app.add_middleware(CORSMiddleware, **cors_options)
    cors = CORSMiddleware(None, **cors_options)  # the same policy, for the endpoint served before the middleware
    limiter = RateLimiter(settings.gateway_rate_per_s)

    @app.post("/v1/events", status_code=202, response_model=Accepted, responses=_EVENTS_RESPONSES,
              openapi_extra=_EVENTS_BODY)
    async def post_events(request: Request):
        """Accept one event or {"events": [...]}; 202 only once Kafka confirmed every accepted event."""

    # Served by ``EventsEndpoint``: straight from ``GatewayApp.__call__`` (CORS headers added by the
    # endpoint, the middleware skipped), or through this route when the app is mounted under a prefix.
    route = next(r for r in app.routes if getattr(r, "path", None) == "/v1/events")
    route.app = EventsEndpoint(settings, app.state, limiter, cors=None)
    app.events_endpoint = EventsEndpoint(settings, app.state, limiter, cors=cors)

    @app.get("/t.js")
    async def tracker():
        """The browser tracker (no dependencies); see docs/ingest.md."""
        return Response(TRACKER_JS.read_bytes(), media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=300"})

    if settings.demo_storefront:
        from producers.storefront.site import demo_router

        app.include_router(demo_router(settings), prefix="/demo")

    @app.get("/healthz")
    async def healthz():
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request):
        """Readiness: keys loaded from Kafka."""
        ok = request.app.state.registry.ready
        return JSONResponse({"status": "ready" if ok else "starting"}, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prom():
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
