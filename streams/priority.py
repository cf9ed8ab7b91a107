"""The worker's CPU priority (``worker_nice``): on a machine it shares, its main thread is the live numbers'
critical path and gets its core first.

Every event's live count waits for the worker's one main thread (decode, fold, write: ~50 us of CPU an
event in the whole stack, ~0.75 cores at 15,000 events/s). The gateway, the broker and the sink have slack
(a batch every 2 s, request threads), the worker has none: whenever it loses its core for a second the
backlog, and with it every snapshot, is a second late, and it only catches up on spare CPU. Linux shares
the CPU by autogroup (one per session: ``livemetrics up`` starts each process in a session of its own),
so at the default priority the worker gets one process's share of a full machine, whatever it needs
(BENCHMARKS.md, sixteenth session: the 15k step's p99 on a shared 2-core machine).

``apply`` sets the nice value of the worker's autogroup when the worker leads its session (the group is
its own: a worker started from a shell shares the shell's session, which it leaves alone) and of every
thread it has (threads started later inherit it): the first is what counts between processes under
autogroup, the second where autogroup does not apply (a kernel without it, processes in one cgroup).
A negative value needs ``CAP_SYS_NICE`` or a ``RLIMIT_NICE`` that allows it (systemd ``LimitNICE=``);
without it nothing changes and one line says so. 0 leaves the priority alone. In containers each
service has its own cgroup and the container runtime's CPU weight (compose ``cpu_shares``) is the lever
instead."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("livemetrics.worker")


def apply(nice: int) -> bool:
    """Give this process ``nice`` (its autogroup if it leads its session, and each of its threads);
    True if applied, False if refused (logged) or ``nice`` is 0."""
    if nice == 0:
        return False
    try:
        if os.getsid(0) == os.getpid():  # its own session: the autogroup is this process's alone
            try:
                with open("/proc/self/autogroup", "w") as f:
                    f.write(str(nice))
            except FileNotFoundError:
                pass  # no autogroup (not Linux, or a kernel without it): the threads' nice is what counts
        try:
            tasks = [int(t) for t in os.listdir("/proc/self/task")]
        except FileNotFoundError:
            os.setpriority(os.PRIO_PROCESS, 0, nice)  # elsewhere the whole process
        else:
            for tid in tasks:  # Linux: a nice value is per thread
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, nice)
                except ProcessLookupError:
                    continue  # the thread ended meanwhile
    except PermissionError as exc:
        log.info(
            "worker_nice=%d not applied (%s): the worker runs at the default CPU priority. A negative value needs "
            "CAP_SYS_NICE or RLIMIT_NICE (systemd LimitNICE=); LIVEMETRICS_WORKER_NICE=0 does not ask",
            nice,
            exc.strerror or exc,
        )
        return False
    return True
