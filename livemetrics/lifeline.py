"""Child processes that never outlive the process that started them (Linux).

``prctl(PR_SET_PDEATHSIG, SIGTERM)`` asks the kernel to send the child SIGTERM when its parent ends,
whatever ends it: a signal `up` handles, a crash, or SIGKILL, which no handler sees. Each layer sets it
for its own children (``up`` for the broker, worker, gateway and API; the gateway for its worker
processes), so a whole tree goes down from the top. SIGTERM rather than SIGKILL: the gateway still
flushes its Kafka producer and the broker shuts down cleanly.

Two caveats of the kernel's: the signal follows the parent *thread* that forked the child, so children
are started from the main thread; and a parent that dies before the child's ``prctl`` runs is not
seen, so the child compares its parent pid with the one it was started by and ends itself if they
differ. Elsewhere (no ``prctl``) these are no-ops and process groups are the only clean-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
# What `up` and the benchmarks give their children as ``orphan_exit_s`` (``exit_when_orphaned``).
CHILD_ORPHAN_EXIT_S = 20.0


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.prctl
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn


_prctl = _load_prctl()  # loaded before any fork: the child only calls it


def supported() -> bool:
    return _prctl is not None


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """In a child: get ``sig`` when the parent ends; if ``parent_pid`` has already gone (this process
    was re-parented before the call), exit at once with status 1."""
    if _prctl is None:
        return
    _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)  # a Python signal handler inherited from the parent would only set a flag


def preexec(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``subprocess.Popen(preexec_fn=...)`` that ties the child to this process. Make it in the
    parent (it captures the parent's pid); it runs between fork and exec, and the setting survives
    the exec."""
    parent = os.getpid()

    def tie() -> None:
        die_with_parent(parent, sig)

    return tie


def exit_on_signals(*sigs: int) -> None:
    """Turn SIGTERM and SIGHUP (``timeout``, a closed terminal) into ``SystemExit(128 + n)`` so that
    the ``finally`` blocks and context managers of a command that started children (benchmarks) stop
    them in order; SIGKILL, which nothing can catch, is left to the parent-death signal."""

    def leave(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in sigs or (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)


def exit_when_orphaned(grace_s: float, poll_s: float = 0.5) -> threading.Thread | None:
    """If ``grace_s`` > 0: end this process ``grace_s`` after its parent has gone, however its graceful
    stop is doing. The parent-death SIGTERM starts that stop, but a stop can hang (a worker flushing to a
    broker that went down with the same parent); ending then is a crash, which the pipeline is built to
    survive (nothing acknowledged is lost). Off by default, so that a process an operator starts under
    ``nohup`` keeps running after its shell; ``up`` and the benchmarks turn it on for their children."""
    if grace_s <= 0:
        return None
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)  # a daemon thread's poll: the kernel has no "parent gone" event to wait on
        time.sleep(grace_s)
        sys.stderr.write(f"livemetrics: parent {parent} gone {grace_s:g} s ago and not stopped yet: exiting\n")
        sys.stderr.flush()
        os._exit(1)

    thread = threading.Thread(target=watch, name="orphan-exit", daemon=True)
    thread.start()
    return thread
