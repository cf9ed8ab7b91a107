"""tests/support/stopped_group.py: a group is reported stopped only once every thread of it is, on a real
process with busy threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.support.stopped_group import all_stopped, stop_group, thread_states

# Four threads spinning (busy threads are the ones a pending stop reaches last), then the main thread waits.
_BUSY = """
import threading
def spin():
    while True:
        pass
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def test_stop_group_returns_with_every_thread_stopped_and_they_run_again_after_sigcont():
    proc = subprocess.Popen([sys.executable, "-c", _BUSY], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert len(thread_states(proc.pid)) == 5 and not all_stopped(proc.pid)
        stop_group(proc.pid)
        states = thread_states(proc.pid)
        assert len(states) == 5 and set(states) <= {"T", "t"}, states
        os.killpg(proc.pid, signal.SIGCONT)
        assert not all_stopped(proc.pid)  # SIGCONT takes effect at once: nothing stays stopped
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert thread_states(proc.pid) == [] and not all_stopped(proc.pid)
