"""Delivery outcomes into ClickHouse in batches, off the send path. One insert per delivery, each in a
thread of the loop's default pool, queued 1,000 inserts behind a burst of alerts and the DNS checks of
the next sends behind them. Here one task writes whatever piled up since its last insert, one insert at
a time. Each row's version is taken when the outcome happened, so a row written late never hides a newer
change (a redelivery the seller asked for meanwhile).

An outcome not stored because ClickHouse is away is kept and written again (after 1 s, doubling to 30 s,
and whenever new outcomes come), up to ``KEEP_MAX`` rows: it is written late with its own version, so it
never hides a newer change. Before, it was dropped after one failed insert, and its delivery stayed
``pending`` in the seller's list while the process ran (sent again only at its next start). An outcome
never stored (the process killed or stopped while ClickHouse is away, or past ``KEEP_MAX`` rows or
``KEEP_MAX_BYTES`` of bodies) costs no
alert: the delivery's pending row is still there, so the next start sends it again (at least once, same
idempotency key)."""

from __future__ import annotations

import asyncio
import logging

from clickhouse import notify_deliveries as store
from clickhouse.notify_deliveries import Delivery
from livemetrics.outage_log import Outage
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.api.notify")


RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
KEEP_MAX = 100_000  # outcomes kept for another try while ClickHouse is away
# and their bodies' bytes at most: each row carries its alert's body, up to ~33 KB for a browser key's payment
# failure, so 100,000 kept rows of a flood (refused deliveries are outcomes too) held ~3.3 GB, not ~10 MB.
KEEP_MAX_BYTES = 64 << 20


class OutcomeLog:
    def __init__(self, settings: Settings, clickhouse: Outage | None = None):
        self.settings = settings
        # the outage logged once when it begins and once when it ends (shared with the intake and the poll)
        self.clickhouse = clickhouse or Outage(log, "notifier", "ClickHouse")
        self._rows: list[Delivery] = []  # queued, not tried yet
        self._versions: list[int] = []  # each row's, taken when it happened (not when written)
        self._retry: list[Delivery] = []  # tried, not stored: written again with the next try
        self._retry_versions: list[int] = []
        self._wake = asyncio.Event()
        self._added = self._done = 0  # rows queued, rows tried at least once so far
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
        pause = 0.0  # before the next try of rows not stored
        while not (self._closing and not self._rows and not self._retry):
            if not self._closing:
                try:  # new outcomes (or a flush, or the close) do not wait for the pause
                    await asyncio.wait_for(self._wake.wait(), pause if self._retry else None)
                except TimeoutError:
                    pass
            self._wake.clear()
            new, retry = self._rows, self._retry
            rows, at = retry + new, self._retry_versions + self._versions
            self._rows, self._versions, self._retry, self._retry_versions = [], [], [], []
            if not rows:
                continue
            try:
                await asyncio.to_thread(store.record, self.settings, rows, at)
                if retry:
                    log.info("notifier: %d delivery outcomes recorded after ClickHouse failed", len(rows))
                self.clickhouse.ok(kind="outcomes")
                pause = 0.0
            except Exception as exc:  # noqa: BLE001 - ClickHouse away: keep them for the next try
                if self._closing:  # the pending rows stand (see above)
                    log.warning(
                        "notifier: could not record %d delivery outcomes before stopping: %s", len(rows), str(exc)[:200]
                    )
                else:
                    pause = min(RETRY_MAX_S, max(RETRY_FIRST_S, pause * 2))
                    keep = _newest_within(rows)
                    if keep < len(rows):
                        log.warning(
                            "notifier: %d delivery outcomes not kept (over %d rows or %d bytes of bodies)",
                            len(rows) - keep,
                            KEEP_MAX,
                            KEEP_MAX_BYTES,
                        )
                    self._retry, self._retry_versions = rows[len(rows) - keep :], at[len(rows) - keep :]
                    why = f"could not record delivery outcomes (kept, tried again): {exc}"
                    if not self.clickhouse.failed(why, kind="outcomes"):
                        log.debug("notifier: could not record %d delivery outcomes, again in %g s", len(rows), pause)
            async with self._progress:
                self._done += len(new)  # a flush waits for one try of what it covers, not for ClickHouse
                self._progress.notify_all()

    async def flush(self) -> None:
        """Return once every row queued before the call was tried once (written, or kept for another try)."""
        target = self._added
        self._wake.set()
        async with self._progress:
            await self._progress.wait_for(lambda: self._done >= target)

    async def close(self) -> None:
        """Write what is left, then stop."""
        self._closing = True
        self._wake.set()
        await self._task


def _newest_within(rows: list[Delivery]) -> int:
    """How many of the newest ``rows`` fit KEEP_MAX rows and KEEP_MAX_BYTES of bodies (at least one)."""
    total, n = 0, 0
    for d in reversed(rows[-KEEP_MAX:]):
        total += len(d.body)
        if n and total > KEEP_MAX_BYTES:
            break
        n += 1
    return n
