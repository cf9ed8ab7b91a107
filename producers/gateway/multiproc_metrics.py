"""One consistent set of metrics for a gateway of several processes (``gateway_workers`` > 1).

prometheus-client's multiprocess mode: each process writes its counters and histograms to memory-mapped
files in one directory (``PROMETHEUS_MULTIPROC_DIR``, which the library reads when it is first
imported, so the supervisor sets it before it spawns the workers), and a scrape of any worker reads
every file: counters and histograms are summed over all the workers, the living and the replaced ones
(a replaced worker's counts still happened). Without the variable (one process) ``latest`` is the
usual registry.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, values

ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """Whether this process's metrics are written to the shared directory (decided at import)."""
    return values.ValueClass.__name__ == "MmapedValue"


def latest() -> bytes:
    """The scrape body: the sum over every gateway process in multiprocess mode, else this process's."""
    if not multiprocess():
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess as mp

    registry = CollectorRegistry()
    mp.MultiProcessCollector(registry)
    return generate_latest(registry)


def prepare(path: Path) -> dict[str, str]:
    """An empty directory for a new gateway's files; returns the environment the workers need."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):  # a previous run's counts are not this run's
        old.unlink()
    return {ENV: str(path.resolve())}


def process_gone(path: Path, pid: int) -> None:
    """A worker exited: drop its live gauges (its counters stay in the sum)."""
    from prometheus_client import multiprocess as mp

    mp.mark_process_dead(pid, str(path))
