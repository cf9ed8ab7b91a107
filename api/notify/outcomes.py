"""Delivery outcomes into ClickHouse in batches, off the send path. One insert per delivery, each in a
thread of the loop's default pool, queued 1,000 inserts behind a burst of alerts and the DNS checks of
the next sends behind them. Here one task writes whatever piled up since its last insert, one insert at
a time. Each row's version is taken when the outcome happened, so a row written late never hides a newer
change (a redelivery the seller asked for meanwhile).

An outcome not stored (ClickHouse away, the process killed first) costs no alert: the delivery's pending
row is still there, so the next start sends it again (at least once, same idempotency key)."""

from __future__ import annotations

import asyncio
import logging

from clickhouse import notify_deliveries as store
from clickhouse.notify_deliveries import Delivery
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.api.notify")


class OutcomeLog:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._rows: list[Delivery] = []
        self._versions: list[int] = []  # each row's, taken when it happened (not when written)
        self._wake = asyncio.Event()
        self._added = self._done = 0  # rows queued, rows written (or given up on) so far
        self._progress = asyncio.Condition()
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, rows: list[Delivery]) -> list[int]:
        """Queue the rows for writing; their versions."""
        at = store.versions(len(rows))
        self._added += len(rows)
        self._rows += rows
        self._versions += at
        self._wake.set()
        return at

    async def _run(self) -> None:
        while not (self._closing and not self._rows):
            await self._wake.wait()
            self._wake.clear()
            rows, at, self._rows, self._versions = self._rows, self._versions, [], []
            if not rows:
                continue
            try:
                await asyncio.to_thread(store.record, self.settings, rows, at)
            except Exception as exc:  # noqa: BLE001 - not stored: the pending rows stand (see above)
                log.warning("notifier: could not record %d delivery outcomes: %s", len(rows), str(exc)[:200])
            async with self._progress:
                self._done += len(rows)
                self._progress.notify_all()

    async def flush(self) -> None:
        """Return once every row queued before the call is written (or could not be)."""
        target = self._added
        self._wake.set()
        async with self._progress:
            await self._progress.wait_for(lambda: self._done >= target)

    async def close(self) -> None:
        """Write what is left, then stop."""
        self._closing = True
        self._wake.set()
        await self._task
