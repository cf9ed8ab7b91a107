"""A real process whose event loop gets stuck while its other threads run on: ``with_loop_blocker(env)``
puts ``block_loop/sitecustomize.py`` on the child's PYTHONPATH, and ``block_loop(pid)`` then blocks the
child's main thread (the worker's event loop) in ``time.sleep`` for an hour; ``block_thread(pid)`` blocks
its ClickHouse sink's thread the same way (another thread than the main one: see the sitecustomize).
Nothing of it is in the product: Python imports ``sitecustomize`` at start-up from the path.
``block_thread_here`` does it to a thread of the test process itself, until released."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from pathlib import Path

BLOCKER_DIR = Path(__file__).resolve().parent / "block_loop"
BLOCKED_IN = "block_the_loop_for_a_test"  # the handler's name: what the watchdog's stack shows


def with_loop_blocker(env: dict[str, str]) -> dict[str, str]:
    path = [str(BLOCKER_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def block_loop(pid: int) -> None:
    os.kill(pid, signal.SIGRTMIN)


def block_thread(pid: int) -> None:
    os.kill(pid, signal.SIGRTMIN + 1)


def block_thread_here(name: str, release: threading.Event) -> None:
    """Block this process's thread named ``name`` (at its next bytecode) until ``release`` is set; it then
    raises ``Exception("released")`` where it was (a sink catches it and retries)."""

    class Blocked(Exception):
        def __init__(self, *args: object) -> None:
            block_the_loop_for_a_test(release)
            super().__init__("released")

    def block_the_loop_for_a_test(release: threading.Event) -> None:
        release.wait()

    (thread,) = [t for t in threading.enumerate() if t.name == name]
    assert thread.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(Blocked))
