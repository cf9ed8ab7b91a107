"""Several gateway processes on one port (``gateway_workers`` > 1), each listening on its own
``SO_REUSEPORT`` socket, so that the kernel spreads connections across them by a hash of each
connection.

uvicorn's own workers share one listening socket: whichever process wakes first accepts everything
pending. A burst of keep-alive connections (a load balancer's or a shop's connection pool opening at
once) then stays on one process for its lifetime: measured with ``bench gateway``, 2 workers and 64
connections, one process held nearly all of them at one full core while the other idled (1.2 cores used in all,
104k events/s, against 1.5 cores and 139-146k when the connections were spread).

The parent only supervises: a worker that dies is replaced; one that fails within ``STARTUP_S`` of
starting (port taken, bad settings) stops them all with an error instead of restarting forever. A worker
whose event loop got stuck ends itself (exit code 70, ``livemetrics/loop_watch.py``) and is replaced
like one that died, however soon after its start.
SIGTERM/SIGINT reach every worker, which finishes its requests and flushes its Kafka producer (the
gateway's lifespan) before exiting.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from livemetrics.loop_watch import EXIT_LOOP_STUCK
from producers.gateway import multiproc_metrics

log = logging.getLogger("livemetrics.gateway")

STARTUP_S = 10.0  # a worker exiting sooner than this after its start failed to start
STOP_S = 30.0  # how long the workers get to finish and flush after SIGTERM


def reuseport_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket that other processes of this user can also bind to the same address."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def _worker(options: dict[str, Any], lag: Any = None, shared: Any = None) -> None:
    import uvicorn

    from livemetrics import logs
    from livemetrics.lifeline import die_with_parent
    from producers.gateway import auth, worker_lag

    worker_lag.SHARED = lag  # the supervisor's lag readings, for the overload policy (worker_lag.feed)
    auth.SHARED = shared  # the gateway's rate-limit buckets and signatures seen, across its processes

    logs.configure("gateway")
    die_with_parent(multiprocessing.parent_process().pid)  # SIGTERM when the supervisor ends, even by SIGKILL

    config = uvicorn.Config("producers.gateway.app:create_gateway", factory=True, **options)
    uvicorn.Server(config).run(sockets=[reuseport_socket(config.host, config.port, config.backlog)])


def metrics_dir(settings) -> Path:
    return settings.gateway_metrics_dir or settings.data_dir / "gateway-metrics"


def serve(options: dict[str, Any], workers: int, metrics: Path | None = None) -> int:
    """Run ``workers`` gateway processes with uvicorn ``options`` (host, port, backlog...) until
    SIGTERM/SIGINT; returns the exit status. ``metrics``: the directory of their shared metrics
    (``multiproc_metrics``)."""
    # Fail here, clearly, when the port is taken: bound but not listening, this socket gets no
    # connections, and it is closed before the workers bind.
    try:
        reuseport_socket(options["host"], options["port"], 1).close()
    except OSError as exc:
        log.error("gateway: cannot listen on %s:%s: %s", options["host"], options["port"], exc)
        return 1
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no Kafka client or thread inherited
    if metrics is not None:
        # prometheus-client reads it at import; spawned workers inherit this environment
        os.environ.update(multiproc_metrics.prepare(metrics))

    # Overload protection's lag readings: one probe here for every worker (worker_lag.py), shared memory
    # handed to each worker at its spawn.
    lag, probe = _lag_probe()
    # Rate limits and the replay check hold for the gateway, not per process (auth.py, SharedState).
    shared = _shared_state()

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        p = ctx.Process(target=_worker, args=(options, lag, shared), name="livemetrics-gateway-worker")
        p.start()
        return p, time.monotonic()

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    procs = [start() for _ in range(workers)]
    log.info(
        "gateway workers started",
        extra={
            "pids": [p.pid for p, _ in procs],
            "port": options["port"],
            "metrics_dir": str(metrics) if metrics else None,
        },
    )
    status = 0
    while not stopping.wait(0.5):
        for i, (p, started) in enumerate(procs):
            if p.is_alive():
                continue
            # exit code 70: its loop watchdog ended it (livemetrics/loop_watch.py), so it had started
            if time.monotonic() - started < STARTUP_S and p.exitcode != EXIT_LOOP_STUCK:
                log.error("gateway worker pid %s failed to start (exit code %s)", p.pid, p.exitcode)
                status = 1
                stopping.set()
                break
            log.warning("gateway worker pid %s exited (code %s); starting another", p.pid, p.exitcode)
            if metrics is not None:
                multiproc_metrics.process_gone(metrics, p.pid)
            procs[i] = start()
    for p, _ in procs:
        if p.is_alive():
            p.terminate()  # SIGTERM: uvicorn's graceful shutdown, then the gateway's producer flush
    deadline = time.monotonic() + STOP_S
    for p, _ in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            log.error("gateway worker pid %s did not stop in %.0f s; killed", p.pid, STOP_S)
            p.kill()
            p.join()
    if probe is not None:
        probe.stop()
    return status


def _shared_state() -> Any:
    """The processes' shared rate-limit buckets and signatures (auth.SharedState), or None where shared
    memory cannot be made (each process then limits on its own, as a gateway of one process)."""
    from livemetrics.settings import get_settings
    from producers.gateway.auth import SharedState

    try:
        settings = get_settings()
        return SharedState(settings.gateway_shared_signatures, processes=settings.gateway_workers)
    except (OSError, AttributeError) as exc:  # no memfd_create (not Linux), or memory refused
        log.warning("gateway: no shared rate limits or replay check across its processes (%s); each limits alone", exc)
        return None


def _lag_probe() -> tuple[Any, Any]:
    """(the shared memory of the lag readings, the probe writing them), or (None, None) with overload
    protection off. Settings come from the environment, as the workers' own (the factory's)."""
    from livemetrics.settings import get_settings
    from producers.gateway.worker_lag import LagProbe, SharedReading

    settings = get_settings()
    if settings.gateway_overload_lag_events <= 0:
        return None, None
    shared = SharedReading()
    return shared.array, LagProbe(settings, publish=shared.write).start()
