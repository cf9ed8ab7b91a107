"""A real process whose event loop gets stuck while its other threads run on: ``with_loop_blocker(env)``
puts ``block_loop/sitecustomize.py`` on the child's PYTHONPATH, and ``block_loop(pid)`` then blocks the
child's main thread (the worker's event loop) in ``time.sleep`` for an hour. Nothing of it is in the
product: Python imports ``sitecustomize`` at start-up from the path."""

from __future__ import annotations

import os
import signal
from pathlib import Path

BLOCKER_DIR = Path(__file__).resolve().parent / "block_loop"
BLOCKED_IN = "block_the_loop_for_a_test"  # the handler's name: what the watchdog's stack shows


def with_loop_blocker(env: dict[str, str]) -> dict[str, str]:
    path = [str(BLOCKER_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def block_loop(pid: int) -> None:
    os.kill(pid, signal.SIGRTMIN)
