"""Test-only: on PYTHONPATH of a child process (``tests/support/loop_blocker.py``), makes SIGRTMIN block
the process's main thread, where the Faust worker's event loop runs, in a syscall for an hour, while its
other threads (the /healthz server, the loop watchdog) run on. SIGSTOP is not that: it stops every thread.

Python runs a signal handler on the main thread between two bytecodes of whatever it is doing: here, a
callback of the event loop (or the loop's wait for I/O, which the signal interrupts)."""

import signal
import time


def block_the_loop_for_a_test(signum, frame):
    time.sleep(3600)


signal.signal(signal.SIGRTMIN, block_the_loop_for_a_test)
