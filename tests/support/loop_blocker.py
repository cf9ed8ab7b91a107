"""A real process whose event loop gets stuck while its other threads run on: ``with_loop_blocker(env)``
puts ``block_loop/sitecustomize.py`` on the child's PYTHONPATH, and ``block_loop(pid)`` then blocks the
child's main thread (the worker's event loop) in ``time.sleep`` for an hour; ``block_thread(pid)`` blocks
its ClickHouse sink's thread the same way, at the top of its loop's next pass, outside any wait it declares
(another thread than the main one: see the sitecustomize).
Nothing of it is in the product: Python imports ``sitecustomize`` at start-up from the path.
``block_thread_here`` does it to a thread of the test process itself, until released."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from livemetrics.loop_watch import LoopWatch

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
    """Block this process's thread named ``name`` at its next ``LoopWatch.beat()`` (the top of its loop's next
    pass, outside any wait it declares with ``watch.waiting``) until ``release`` is set; the pass then goes on.
    An asynchronous exception (as before) could land inside such a wait (the sink's Kafka probe, a commit,
    an insert), which the watch rightly counts as alive (200, "waiting_on") for up to ``wait_limit_s``."""
    beat = LoopWatch.beat

    def beat_or_block(self: LoopWatch) -> None:
        if threading.current_thread().name == name:
            LoopWatch.beat = beat  # type: ignore[method-assign]  # once: every other beat is the real one again
            block_the_loop_for_a_test(release)
        beat(self)

    def block_the_loop_for_a_test(release: threading.Event) -> None:
        release.wait()

    assert [t for t in threading.enumerate() if t.name == name], f"no thread named {name}"
    LoopWatch.beat = beat_or_block  # type: ignore[method-assign]
