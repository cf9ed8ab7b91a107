"""The gateway's HTTP surface: ``POST /v1/events``, the tracker, the demo storefront and health."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from livemetrics import swagger_ui
from livemetrics.compacted import wait_all
from livemetrics.contract import MAX_BATCH, MAX_BODY_BYTES
from livemetrics.contract_schema import events_components, events_request_body
from livemetrics.keys import KeyRegistry
from livemetrics.loop_watch import watching
from livemetrics.settings import Settings, get_settings
from producers.gateway import multiproc_metrics, worker_lag
from producers.gateway.auth import Authenticator, RateLimiter
from producers.gateway.client_limit import ClientLimiter
from producers.gateway.delivery import KafkaDelivery
from producers.gateway.events import BYTES_PER_EVENT, DIGIT_GROUPS_PER_EVENT, EventsEndpoint
from producers.gateway.ip_salts import SharedSalts
from producers.gateway.topic_limits import TopicLimits

TRACKER_JS = Path(__file__).resolve().parent.parent / "tracker" / "t.js"


class Rejected(BaseModel):
    index: int
    error: str


class Accepted(BaseModel):
    accepted: int
    rejected: list[Rejected]


class Failure(BaseModel):
    error: str


class NothingValid(Failure):
    """422: ``rejected`` names each event's error; a body unusable as a whole has ``error`` only."""

    accepted: int = 0
    rejected: list[Rejected] = []


class NotAccepted(Failure):
    accepted: int = 0


def _retry_after(why: str) -> dict:
    return {"Retry-After": {"required": True, "description": why, "schema": {"type": "integer", "minimum": 1}}}


_EVENTS_RESPONSES = {
    401: {"model": Failure, "description": "missing, unknown or revoked key; bad, stale or replayed signature"},
    403: {
        "model": Failure,
        "description": "backfill from a browser key; a browser key used from an origin it does "
        "not allow (or with none outside dev mode); an event type the key may not send",
    },
    413: {
        "model": Failure,
        "description": f"body over {MAX_BODY_BYTES} bytes (bytes actually read) or batch over {MAX_BATCH}; or "
        f"a request counting as more than {MAX_BATCH} events, whatever the key's rate (one per "
        f"{DIGIT_GROUPS_PER_EVENT} digit groups of the events the card check reads)",
    },
    422: {"model": NothingValid, "description": "nothing valid: each error names the field and the event index"},
    429: {
        "model": NotAccepted,
        "description": "the key, or the client IP (browser keys), is over its rate limit (in events/s; a "
        f"request counts as its events, or as one per {BYTES_PER_EVENT} bytes of body or per "
        f"{DIGIT_GROUPS_PER_EVENT} digit groups when that is more); "
        "or live processing is behind and the key's seller sent far more than its share of the recent "
        "events (`error` says by how much, and what the seller sent); `error` names which; nothing was accepted",
        "headers": _retry_after("whole seconds until there is room again"),
    },
    503: {
        "model": NotAccepted,
        "description": "Kafka cannot confirm delivery, or (signed requests) the gateway's "
        "replay cache is full, or the gateway has not read its keys yet (started while Kafka is away); "
        "retry with the same event ids",
        "headers": _retry_after("seconds to wait before retrying"),
    },
}
# How a caller authenticates (producers/gateway/auth.py); a signed request carries all three headers.
_SECURITY_SCHEMES = {
    "browserKey": {"type": "http", "scheme": "bearer", "description": "a browser key `lm_pk_...`"},
    "browserKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Livemetrics-Key"},
    "browserKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "for navigator.sendBeacon, which cannot set headers",
    },
    "serverKeySignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Livemetrics-Signature",
        "description": 'v2=<hex HMAC-SHA256(secret, "<timestamp>.<backfill 0|1>." + body)>, with '
        "X-Livemetrics-Key-Id and X-Livemetrics-Timestamp (docs/ingest.md)",
    },
}
_EVENTS_EXTRA = {
    "requestBody": events_request_body(),
    "security": [{name: []} for name in _SECURITY_SCHEMES],
}


class Status(BaseModel):
    status: str
    problems: list[str] | None = None  # /readyz: configuration the gateway cannot work around (topic limits)


class JavaScript(Response):
    media_type = "application/javascript"


class PromText(Response):
    media_type = "text/plain"  # documented type; the body says its exposition-format version itself


class GatewayApp(FastAPI):
    """FastAPI, with ``POST /v1/events`` handed straight to its endpoint (see producers/gateway/events.py)."""

    events_endpoint: EventsEndpoint | None = None
    max_clock_skew_s: int | None = None

    def openapi(self) -> dict:
        """FastAPI's document, with the event contract's schemas (livemetrics/contract_schema.py)."""
        if self.openapi_schema is None:
            schema = super().openapi()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(events_components(self.max_clock_skew_s))
            components["securitySchemes"] = _SECURITY_SCHEMES
        return self.openapi_schema

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/v1/events"
            and scope["method"] == "POST"
            and self.events_endpoint is not None
        ):
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
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-length", b"21"), (b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
    except Exception:  # noqa: BLE001 - the response had started: nothing more to say to the client
        pass


def create_gateway(settings: Settings | None = None, registry: KeyRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # the readers of Kafka start together and are waited for together (compacted.wait_all)
        app.state.registry = registry or KeyRegistry(settings).start(wait_s=0)
        app.state.ip_salts = SharedSalts(settings).start(wait_s=0)  # today's salt shared by every replica
        app.state.topic_limits = TopicLimits(settings).start()
        app.state.delivery = KafkaDelivery(settings, **{"batch.size": app.state.topic_limits.batch_size()})
        app.state.lag_probe = worker_lag.feed(shedder, settings)  # overload protection's readings
        wait_all(settings.startup_wait_s, app.state.registry.wait_ready, app.state.ip_salts.wait_ready)
        app.state.auth = Authenticator(
            app.state.registry,
            settings.signature_tolerance_s,
            dev_mode=settings.dev_mode,
            replay_max=settings.replay_cache_max,
        )
        try:
            # a stuck worker process ends itself: its siblings on the port answer up's and compose's probes
            async with watching("gateway", settings.loop_stale_s, settings.loop_stuck_exit_s):
                yield
        finally:
            app.state.delivery.close()  # graceful shutdown: in-flight events are flushed
            app.state.ip_salts.stop()
            app.state.topic_limits.stop()
            if app.state.lag_probe is not None:
                app.state.lag_probe.stop()
            if registry is None:
                app.state.registry.stop()

    app = GatewayApp(title="livemetrics gateway", version="1", lifespan=lifespan, docs_url=None)
    swagger_ui.serve(app, "livemetrics gateway")  # pinned and hashed, not FastAPI's floating CDN files
    app.max_clock_skew_s = settings.max_clock_skew_s

    cors_options = dict(
        allow_origins=settings.allowed_origins,
        allow_methods=["POST", "GET"],
        allow_headers=["Authorization", "Content-Type", "X-Livemetrics-Key"],
        expose_headers=["Retry-After"],  # a cross-origin tracker reads it on 429/503 (it waits at least that)
        max_age=3600,
    )
    app.add_middleware(CORSMiddleware, **cors_options)
    cors = CORSMiddleware(None, **cors_options)  # the same policy, for the endpoint served before the middleware
    limiter = RateLimiter(settings.gateway_rate_per_s)
    client_limiter = ClientLimiter(settings.client_ip_rate_per_s)  # both endpoints below share the buckets
    shedder = worker_lag.new_shedder(settings)  # and the overload policy's counts

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses=_EVENTS_RESPONSES,
        response_description="every accepted event is in Kafka; every other one is named in `rejected`",
        openapi_extra=_EVENTS_EXTRA,
    )
    async def post_events(request: Request):
        """Accept one event or {"events": [...]}; 202 only once Kafka confirmed every accepted event."""

    # Served by ``EventsEndpoint``: straight from ``GatewayApp.__call__`` (CORS headers added by the
    # endpoint, the middleware skipped), or through this route when the app is mounted under a prefix.
    route = next(r for r in app.routes if getattr(r, "path", None) == "/v1/events")
    route.app = EventsEndpoint(settings, app.state, limiter, cors=None, client_limiter=client_limiter, shedder=shedder)
    app.events_endpoint = EventsEndpoint(
        settings, app.state, limiter, cors=cors, client_limiter=client_limiter, shedder=shedder
    )

    @app.get("/t.js", response_class=JavaScript)
    async def tracker():
        """The browser tracker (no dependencies); see docs/ingest.md."""
        return JavaScript(TRACKER_JS.read_bytes(), headers={"Cache-Control": "public, max-age=300"})

    from producers.gateway.providers.route import provider_router

    app.include_router(provider_router(settings))  # payment providers' webhooks (docs/providers.md)

    if settings.demo_storefront:
        from producers.storefront.site import demo_router

        app.include_router(demo_router(settings), prefix="/demo")

    @app.get("/healthz", response_model=Status)
    async def healthz():
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=Status,
        responses={503: {"model": Status, "description": "keys or today's IP-hash salt not loaded from Kafka yet"}},
    )
    async def readyz(request: Request):
        """Readiness: keys and today's IP-hash salt loaded from Kafka. ``problems``: a raw topic whose
        max.message.bytes is under the largest valid event (its events over it are refused; still 200)."""
        state = request.app.state
        ok = state.registry.ready and state.ip_salts.ready
        body: dict = {"status": "ready" if ok else "starting"}
        if state.topic_limits.problems:
            body["problems"] = state.topic_limits.problems
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", response_class=PromText)
    async def prom():
        """Prometheus metrics."""
        return Response(multiproc_metrics.latest(), media_type=CONTENT_TYPE_LATEST)  # all workers' sum

    return app
