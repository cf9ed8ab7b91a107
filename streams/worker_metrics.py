"""The stream worker's Prometheus counters and its /healthz, /readyz and /metrics, served on
``worker_metrics_port`` (0: off) by ``livemetrics.ops_http``; what they read from the Faust app is in
``streams.worker_ops``. The gateway's and the API's metrics are in ``livemetrics/metrics.py``."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter

SKIPPED = Counter(
    "livemetrics_worker_messages_skipped_total",
    "Derived messages the worker did not produce because they exceed worker_max_message_bytes",
    ["what"],
)
FOLDED = Counter(
    "livemetrics_live_values_folded_total",
    "Live values counted under ~other past a seller's cap (increase of a (seller, partition) sums row's folded count)",
    ["dimension"],
)

_served: list[int] = []


def serve(s) -> None:
    """Serve the worker's ops endpoints on ``worker_metrics_port`` (0: not served); once per process."""
    if s.worker_metrics_port and not _served:
        from livemetrics.ops_http import OpsServer
        from streams import worker_ops
        from streams.app import app

        REGISTRY.register(worker_ops.WorkerCollector(app))
        OpsServer("worker", s.host, s.worker_metrics_port, lambda: worker_ops.ready(app)).start()
        _served.append(s.worker_metrics_port)
