"""The CPU priority of the process that runs the sink (``sink_nice``; docs/clickhouse.md, Sink).

The sink's work is throughput only: a batch stored a second later changes nothing but how far history
trails live traffic. The worker's is latency: on a machine whose cores the pipeline fills, every second the
worker waits for a core is a second more between an event and the live numbers (BENCHMARKS.md, #19, the
eleventh session). Linux schedules a process that leads its own session as its own autogroup, weighed
against the other processes by the autogroup's nice value whatever its thread count (`livemetrics up`
starts each process so, and the ClickHouse threads of an insert or a merge then count as one process);
elsewhere each thread's own nice value weighs it. Lowering either needs no privilege. A process that does
not lead its session (a test run, a shell's job) shares its autogroup with others and is left alone.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("livemetrics.sink")


def lower_priority(nice: int) -> bool:
    """Lower this process's CPU priority to ``nice`` (0: leave it), if it leads its own session: its
    autogroup's nice value (where the kernel has autogroups) and each of its threads' (threads started
    later inherit their starter's). Returns whether it did."""
    if nice <= 0 or os.getsid(0) != os.getpid():
        return False
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass  # no autogroups here (or not Linux): the threads' nice values below are what counts
    try:
        for tid in os.listdir("/proc/self/task"):
            os.setpriority(os.PRIO_PROCESS, int(tid), max(nice, os.getpriority(os.PRIO_PROCESS, int(tid))))
    except (OSError, ValueError) as exc:
        log.warning("sink: could not lower the process's CPU priority to nice %d: %s", nice, exc)
        return False
    log.info("sink: this process runs at nice %d (sink_nice), below the live pipeline", nice)
    return True
