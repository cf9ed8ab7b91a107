"""The standalone sink's /healthz, /readyz and /metrics (``livemetrics sink``, on ``sink_ops_port``; 0:
off). The figures are the sink's own (``livemetrics/metrics.py``: lag per partition, oldest unstored
event, stalled, rows, failed batches, dead-lettered messages); readiness is the API's rule for the
embedded sink: partitions assigned, not stalled, and ClickHouse answering within 2 s (``probe``).
/healthz is 503 once the sink's thread is stuck (``sink.watch``: blocked anywhere but in a wait on
ClickHouse or Kafka, clickhouse/sink.py); its watchdog, started with the sink, ends the process after
``loop_stuck_exit_s``."""

from __future__ import annotations

from clickhouse.probe import Probe
from livemetrics.ops_http import OpsServer
from livemetrics.settings import Settings


def ready(sink, probe: Probe | None = None) -> tuple[bool, dict]:
    assigned = len(sink.lag._starts)  # set by each assignment (``LagWatch.assigned``)
    status = sink.lag.status()
    ok = assigned > 0 and not status["stalled"]
    details: dict = {"partitions_assigned": assigned, **status}
    if probe is not None:
        answers, why = probe.check()
        details["clickhouse"] = answers if why is None else why
        ok = ok and answers
    return ok, details


def serve_ops(sink, settings: Settings) -> OpsServer | None:
    if not settings.sink_ops_port:
        return None
    probe = Probe(settings)
    return OpsServer(
        "sink", settings.host, settings.sink_ops_port, lambda: ready(sink, probe), sink.watch.health
    ).start()
