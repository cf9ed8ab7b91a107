"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from clickhouse.client import get_client

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: Kafka followed (keys and snapshots loaded) and ClickHouse answering."""
    state = request.app.state
    checks = {"kafka": state.registry.ready and state.feed.caught_up.is_set()}
    try:
        await asyncio.to_thread(get_client(state.settings).command, "SELECT 1")
        checks["clickhouse"] = True
    except Exception:  # noqa: BLE001 - any failure means not ready
        checks["clickhouse"] = False
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics")
async def prometheus() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
