"""The gateway's HTTP surface: ``POST /v1/events``, the tracker, the demo storefront and health."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from livemetrics import metrics
from livemetrics.contract import MAX_BODY_BYTES
from livemetrics.keys import KeyRegistry
from livemetrics.settings import Settings, get_settings
from livemetrics.validation import BodyError
from producers.gateway.auth import AuthError, Authenticator, RateLimiter
from producers.gateway.delivery import DeliveryUnavailable, KafkaDelivery
from producers.gateway.enrich import client_ip
from producers.gateway.ingest import ClientInfo, dead_letter, ingest
from livemetrics.validation import split_body

TRACKER_JS = Path(__file__).resolve().parent.parent / "tracker" / "t.js"


class BodyTooLarge(Exception):
    pass


async def read_limited(request: Request, limit: int) -> bytes:
    """Read the body, counting the bytes actually received (Content-Length is only a hint)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


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

    app = FastAPI(title="livemetrics gateway", version="1", lifespan=lifespan)

    app.add_middleware(
        CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["POST", "GET"],
        allow_headers=["Authorization", "Content-Type", "X-Livemetrics-Key"], max_age=3600,
    )
    limiter = RateLimiter(settings.gateway_rate_per_s)

    @app.post("/v1/events", status_code=202)
    async def post_events(request: Request):
        """Accept one event or {"events": [...]}; 202 only once Kafka confirmed every accepted event."""
        try:
            body = await read_limited(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            metrics.EVENTS_REJECTED.labels("oversize").inc()
            return _error(413, f"body over the limit of {MAX_BODY_BYTES} bytes")
        auth: Authenticator = request.app.state.auth
        try:
            caller = auth.caller(request.headers, request.query_params, body)
        except AuthError as exc:
            return _error(exc.status, str(exc))
        rec = caller.record
        try:
            raws = split_body(body)
        except BodyError as exc:
            metrics.EVENTS_REJECTED.labels("body").inc()
            return _error(exc.status, str(exc))
        n = len(raws)
        wait = limiter.take(rec.key_id, rec.rate_per_s, n, time.monotonic())
        if wait:
            metrics.EVENTS_REJECTED.labels("rate_limited").inc(n)
            return JSONResponse({"error": f"key {rec.key_id} is over its rate limit; retry in {wait} s", "accepted": 0},
                                status_code=429, headers={"Retry-After": str(wait)})
        peer = request.client.host if request.client else None
        client = ClientInfo(
            seller_id=rec.seller_id,
            ip=client_ip(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies),
            user_agent=request.headers.get("user-agent", ""),
            backfill=caller.backfill,
        )
        try:
            result = ingest(body, client, settings, raws)
        except BodyError as exc:
            metrics.EVENTS_REJECTED.labels("body").inc()
            return _error(exc.status, str(exc))
        delivery: KafkaDelivery = request.app.state.delivery
        now = time.time_ns() // 1_000_000
        for rej in result.rejected:
            metrics.EVENTS_REJECTED.labels(rej.reason).inc()
            delivery.send_soon(settings.topic("dead-letter"), rec.seller_id.encode(), dead_letter(rej, client, now))
        rejected = [{"index": r.index, "error": r.error} for r in result.rejected]
        if not result.records:
            return JSONResponse({"accepted": 0, "rejected": rejected, "error": rejected[0]["error"]}, status_code=422)
        try:
            await delivery.send(result.records, len(result.records))
        except DeliveryUnavailable as exc:
            metrics.DELIVERY_FAILURES.inc()
            return JSONResponse(
                {"error": f"events could not be made durable, retry later: {exc}", "accepted": 0},
                status_code=503, headers={"Retry-After": "5"},
            )
        metrics.EVENTS_ACCEPTED.labels("all").inc(len(result.records))
        return JSONResponse({"accepted": len(result.records), "rejected": rejected}, status_code=202)

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
