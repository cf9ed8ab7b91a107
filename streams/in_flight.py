"""Whether the sessions agent is in the middle of a batch, for its revocation handler.

Faust waits for the messages being handled (``Consumer.wait_empty``) before it sends the revocation
signal only when the consumer's assignment is not empty; aiokafka reports an empty one while a replaced
subscription has no assignment yet. A batch awaiting its alerts' delivery could then span the
revocation: folded under one assignment, written under the next. The agent's revocation handler waits
here on every revocation instead (``agents/sessions.py``), and a batch that spans one all the same is
refused at its write (``session_memory.check_generation``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class BatchStillRunning(RuntimeError):
    """A revocation waited longer than it may for the batch in flight."""


class BatchesInFlight:
    def __init__(self) -> None:
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Around the handling of one batch, from its fold to its write."""
        self.running += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.running -= 1
            if not self.running:
                self._idle.set()

    async def idle(self, timeout: float) -> None:
        """Return once no batch is running. Checked when it returns, so a caller that does not await
        before acting acts before another batch can start. Raises ``BatchStillRunning`` after
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.running:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(self._idle.wait(), remaining)
            except TimeoutError:
                raise BatchStillRunning(
                    f"a batch of the sessions agent was still running {timeout:g} s into a "
                    "revocation (is the broker down? it waits for its alerts' delivery)"
                ) from None
