"""A heartbeat task for tests that must show an event loop kept running: it records each gap between
its turns (the loop watch's heartbeat measures the same thing)."""

from __future__ import annotations

import asyncio


async def record_gaps(gaps: list[float]) -> None:
    """Append to ``gaps`` how long the loop did not run this task, each turn (every ~10 ms) until cancelled."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(0.01)
        now = loop.time()
        gaps.append(now - last)
        last = now
