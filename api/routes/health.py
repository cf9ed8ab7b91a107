"""Operational endpoints: liveness, readiness (the embedded sink's included), Prometheus metrics, and how
far behind history is (for the dashboard: a lag figure only, the same for every seller)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import PrincipalDep
from api.responses import AUTH, TOKEN, PromText, Readiness
from clickhouse.client import get_client

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Kafka not followed yet, ClickHouse not answering, "
            "or the embedded sink stalled (`checks.sink` false)",
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: Kafka followed (keys and snapshots loaded), ClickHouse answering and, in a process that runs
    the sink, the sink not stalled (it has a lag and stored nothing for ``sink_stall_s``; ``sink`` says
    how far behind it is)."""
    state = request.app.state
    checks = {"kafka": state.registry.ready and state.feed.caught_up.is_set()}
    try:
        # The client too is made on the thread: making one asks ClickHouse, which must not hold up the loop.
        await asyncio.to_thread(lambda: get_client(state.settings).command("SELECT 1"))
        checks["clickhouse"] = True
    except Exception:  # noqa: BLE001 - any failure means not ready
        checks["clickhouse"] = False
    body: dict = {"checks": checks}
    sink = getattr(state, "sink", None)
    if sink is not None:
        body["sink"] = sink.lag.status()
        checks["sink"] = not body["sink"]["stalled"]
    ok = all(checks.values())
    body["status"] = "ready" if ok else "not ready"
    if not ok:
        body["degraded"] = [name for name, fine in checks.items() if not fine]
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/v1/history/lag", dependencies=AUTH, responses=TOKEN)
async def history_lag(request: Request, principal: PrincipalDep) -> dict:
    """How far behind the history reports are: the age in seconds of the oldest event not stored in ClickHouse
    yet (0: up to date; null: this API process does not run the sink, so it cannot tell), and whether the
    sink is stalled. Any valid token; it says nothing about any seller."""
    sink = getattr(request.app.state, "sink", None)
    if sink is None:
        return {"behind_seconds": None, "stalled": None}
    return {"behind_seconds": round(sink.lag.oldest_unstored_s(), 1), "stalled": sink.lag.stalled()}


@router.get("/metrics", response_class=PromText)
async def prometheus() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
