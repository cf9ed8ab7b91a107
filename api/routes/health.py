"""Operational endpoints: liveness, readiness (the embedded sink's included), Prometheus metrics, and how
far behind history is (for the dashboard: a lag figure only, the same for every seller)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import PrincipalDep
from api.responses import AUTH, TOKEN, PromText, Readiness
from clickhouse.probe import Probe

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    responses={503: {"description": "the embedded ClickHouse sink's thread is stuck (`sink` says how long)"}},
)
async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers and, in a process that runs the sink, the sink's thread is not stuck
    (blocked for ``loop_stale_s`` anywhere but in a wait on ClickHouse or Kafka: clickhouse/sink.py). After
    ``loop_stuck_exit_s`` the process exits with code 70 to be restarted."""
    sink = getattr(request.app.state, "sink", None)
    if sink is None:
        return JSONResponse({"status": "ok"})
    alive, details = sink.watch.health()
    if alive:
        return JSONResponse({"status": "ok", **({"sink": details} if details else {})})
    return JSONResponse({"status": "stuck", "stuck": ["sink"], "sink": details}, status_code=503)


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Kafka not followed yet, ClickHouse not answering within 2 s (`clickhouse` says "
            "why), or the embedded sink stalled or stuck (`checks.sink` false)",
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: Kafka followed (keys and snapshots loaded), ClickHouse answering within 2 s
    (``clickhouse/probe.py``) and, in a process that runs the sink, the sink neither stalled (it has a lag
    and stored nothing for ``sink_stall_s``; ``sink`` says how far behind it is) nor stuck."""
    state = request.app.state
    checks = {"kafka": state.registry.ready and state.feed.caught_up.is_set()}
    probe = getattr(state, "clickhouse_probe", None)
    if probe is None:
        probe = state.clickhouse_probe = Probe(state.settings)
    # Within ~2 s whatever ClickHouse does (a hung server included), one probe in flight at most, waited
    # for on the loop (the probe runs on its own thread: it must not hold up the loop).
    checks["clickhouse"], why = await probe.acheck()
    body: dict = {"checks": checks}
    if why is not None:
        body["clickhouse"] = why
    sink = getattr(state, "sink", None)
    if sink is not None:
        body["sink"] = sink.lag.status()
        alive, details = sink.watch.health()
        if not alive:
            body["sink"]["stuck"] = details
        checks["sink"] = alive and not body["sink"]["stalled"]
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
