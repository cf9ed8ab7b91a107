"""The stream worker's Prometheus counters and its /healthz, /readyz and /metrics, served on
``worker_metrics_port`` (0: off) by ``livemetrics.ops_http``; what they read from the Faust app is in
``streams.worker_ops``. The gateway's and the API's metrics are in ``livemetrics/metrics.py``.

/healthz is served from a thread, so it asks the loop's heartbeat (``livemetrics/loop_watch.py``): 503
once the event loop has not run for ``loop_stale_s``; its watchdog ends the worker once it has not run
for ``loop_stuck_exit_s`` (with or without the port). While the worker waits on Kafka (changelog rows waiting
for room: ``streams/worker_ops.py::health``) it answers 200 and says so."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter

from livemetrics.loop_watch import LoopWatch

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

_served: list[LoopWatch] = []


def serve(s) -> None:
    """Watch the worker's event loop, and serve its ops endpoints on ``worker_metrics_port`` (0: not
    served); once per process."""
    if _served:
        return
    from streams.app import app

    watch = LoopWatch("worker", s.loop_stale_s, s.loop_stuck_exit_s)
    _served.append(watch)

    @app.task
    async def loop_heartbeat() -> None:  # started with the app, on its loop
        watch.start_watchdog()  # here, so that start-up (before the loop runs) is not judged
        await watch.run()

    if s.worker_metrics_port:
        from livemetrics.ops_http import OpsServer
        from streams import worker_ops

        REGISTRY.register(worker_ops.WorkerCollector(app))
        OpsServer(
            "worker", s.host, s.worker_metrics_port, lambda: worker_ops.ready(app), lambda: worker_ops.health(watch)
        ).start()
