"""The standalone sink's /healthz, /readyz and /metrics (``livemetrics sink``, on ``sink_ops_port``; 0:
off). The figures are the sink's own (``livemetrics/metrics.py``: lag per partition, oldest unstored
event, stalled, rows, failed batches, dead-lettered messages); readiness is the API's rule for the
embedded sink: partitions assigned and not stalled (``sink_lag``)."""

from __future__ import annotations

from livemetrics.ops_http import OpsServer
from livemetrics.settings import Settings


def ready(sink) -> tuple[bool, dict]:
    assigned = len(sink.lag._starts)  # set by each assignment (``LagWatch.assigned``)
    status = sink.lag.status()
    return assigned > 0 and not status["stalled"], {"partitions_assigned": assigned, **status}


def serve_ops(sink, settings: Settings) -> OpsServer | None:
    if not settings.sink_ops_port:
        return None
    return OpsServer("sink", settings.host, settings.sink_ops_port, lambda: ready(sink)).start()
