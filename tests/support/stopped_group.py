"""Stop a process group (SIGSTOP) and return only once every thread of its leader is stopped.

``kill`` only marks the stop pending: the kernel wakes one thread to start the group stop, and the others run on
until it has. On a loaded machine that thread can wait tens of milliseconds for a CPU while the broker's network
and request threads go on answering (CI at 5f09054: a describe request sent after SIGSTOP was answered)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.servers import wait_until


def thread_states(pid: int) -> list[str]:
    """The state letter of each thread of ``pid`` (``/proc/<pid>/task/<tid>/stat``); [] once it is gone."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        states.append(text[text.rindex(")") + 2])  # the command name may hold spaces and parentheses
    return states


def all_stopped(pid: int) -> bool:
    states = thread_states(pid)
    return bool(states) and all(s in "tT" for s in states)


def stop_group(pid: int, timeout_s: float = 30) -> None:
    """SIGSTOP the process group ``pid`` leads, and wait until none of its leader's threads can run."""
    os.killpg(pid, signal.SIGSTOP)
    wait_until(lambda: all_stopped(pid), timeout_s, interval=0.005, what=f"every thread of {pid} stopped")
