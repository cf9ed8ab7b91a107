"""The stream worker's Prometheus counters, served on ``worker_metrics_port`` when it is set (the worker
has no HTTP server otherwise; the gateway's and the API's metrics are in ``livemetrics/metrics.py``)."""

from __future__ import annotations

from prometheus_client import Counter

SKIPPED = Counter("livemetrics_worker_messages_skipped_total",
                  "Derived messages the worker did not produce because they exceed worker_max_message_bytes", ["what"])
FOLDED = Counter("livemetrics_live_values_folded_total",
                 "Live values counted under ~other past a seller's cap (increase of a (seller, partition) sums row's "
                 "folded count)", ["dimension"])

_served: list[int] = []


def serve(s) -> None:
    """Serve ``/metrics`` on ``worker_metrics_port`` (0: not served); once per process."""
    if s.worker_metrics_port and not _served:
        from prometheus_client import start_http_server

        start_http_server(s.worker_metrics_port, addr=s.host)
        _served.append(s.worker_metrics_port)
