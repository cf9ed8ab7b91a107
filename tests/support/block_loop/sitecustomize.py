"""Test-only: on PYTHONPATH of a child process (``tests/support/loop_blocker.py``), makes SIGRTMIN block
the process's main thread, where the Faust worker's event loop runs, in a syscall for an hour, while its
other threads (the /healthz server, the loop watchdog) run on. SIGSTOP is not that: it stops every thread.

Python runs a signal handler on the main thread between two bytecodes of whatever it is doing: here, a
callback of the event loop (or the loop's wait for I/O, which the signal interrupts).

SIGRTMIN+1 blocks another thread, the one named by ``LIVEMETRICS_TEST_BLOCK_THREAD`` (default: the
ClickHouse sink's, ``clickhouse-sink``): a signal handler runs only on the main thread, so the handler
hands that thread an asynchronous exception (``PyThreadState_SetAsyncExc``), and making the exception
(its ``__init__``, run by that thread at its next bytecode) is the hour's sleep."""

import ctypes
import os
import signal
import threading
import time


def block_the_loop_for_a_test(signum, frame):
    time.sleep(3600)


class BlockThisThread(Exception):
    def __init__(self, *args):
        block_the_loop_for_a_test(None, None)
        super().__init__(*args)


def block_a_thread(signum, frame):
    name = os.environ.get("LIVEMETRICS_TEST_BLOCK_THREAD", "clickhouse-sink")
    for thread in threading.enumerate():
        if thread.name == name and thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(BlockThisThread))


signal.signal(signal.SIGRTMIN, block_the_loop_for_a_test)
signal.signal(signal.SIGRTMIN + 1, block_a_thread)
