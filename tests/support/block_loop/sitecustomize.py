"""Test-only: on PYTHONPATH of a child process (``tests/support/loop_blocker.py``), makes SIGRTMIN block
the process's main thread, where the Faust worker's event loop runs, in a syscall for an hour, while its
other threads (the /healthz server, the loop watchdog) run on. SIGSTOP is not that: it stops every thread.

Python runs a signal handler on the main thread between two bytecodes of whatever it is doing: here, a
callback of the event loop (or the loop's wait for I/O, which the signal interrupts).

SIGRTMIN+1 blocks another thread that a ``LoopWatch`` watches (livemetrics/loop_watch.py), the one named by
``LIVEMETRICS_TEST_BLOCK_THREAD`` (default: the ClickHouse sink's, ``clickhouse-sink``), for an hour at its
next ``beat()``: the top of its loop's next pass, outside any wait it declares (``watch.waiting``). A signal
handler runs only on the main thread, so the handler swaps ``LoopWatch.beat`` for one that sleeps when
that thread calls it. Blocking the thread wherever it happens to be (an asynchronous exception, as before)
could land inside a declared wait (the sink's Kafka probe, a commit, a ClickHouse insert): that is a wait
on another service, which /healthz rightly reports as 200 for up to ``wait_limit_s`` (600 s), and the
test's 503 would not come."""

import os
import signal
import threading
import time


def block_the_loop_for_a_test(signum, frame):
    time.sleep(3600)  # the hang itself: blocks the loop until the watchdog ends the process


def block_a_thread(signum, frame):
    name = os.environ.get("LIVEMETRICS_TEST_BLOCK_THREAD", "clickhouse-sink")
    from livemetrics.loop_watch import LoopWatch

    beat = LoopWatch.beat

    def beat_or_block(self):
        if threading.current_thread().name == name:
            block_the_loop_for_a_test(None, None)
        beat(self)

    LoopWatch.beat = beat_or_block


signal.signal(signal.SIGRTMIN, block_the_loop_for_a_test)
signal.signal(signal.SIGRTMIN + 1, block_a_thread)
