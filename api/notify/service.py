"""The notifier as the API process runs it: the channel book, the dispatcher and the alert intake, plus
the pending deliveries stored in ClickHouse: all of its sellers' when partitions are assigned (a previous
run's, or another notifier's before the partitions moved), and every ``notify_poll_s`` those changed
since the last look (redeliveries asked for through any API replica)."""

from __future__ import annotations

import asyncio
import logging

from api.notify.channels import ChannelBook
from api.notify.dispatch import Dispatcher
from api.notify.intake import AlertIntake
from api.notify.ownership import Ownership
from clickhouse import notify_deliveries as store
from livemetrics.outage_log import Outage
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.api.notify")
# A row's version is taken when its change happens, a moment before it is stored: each look reads back this
# far before the previous one began, so a row stored late is still seen (those already held are skipped).
# Also how far apart the clocks of the API hosts may be (row versions compare their times anyway).
POLL_OVERLAP_NS = 60 * 10**9


class Notifier:
    def __init__(self, settings: Settings, channels: ChannelBook):
        self.settings, self.channels = settings, channels
        self.ownership = Ownership()
        self.dispatcher: Dispatcher | None = None
        self.intake: AlertIntake | None = None
        self._poller: asyncio.Task | None = None
        self._joiner: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._reload = False  # partitions were assigned: read every pending delivery once
        self._since: int | None = None  # the next look reads rows of a newer version than this
        self.loop = asyncio.get_running_loop()
        # ClickHouse's outages, seen by the intake, the outcomes and the poll: one line each way in all
        self.clickhouse = Outage(log, "notifier", "ClickHouse")

    async def start(self) -> Notifier:
        self.dispatcher = Dispatcher(self.settings, self.channels, owns=self.ownership.owns, clickhouse=self.clickhouse)
        self._poller = self.loop.create_task(self._poll())
        self.intake = AlertIntake(
            self.settings,
            self.channels,
            self.dispatcher.offer_threadsafe,
            self.ownership,
            on_assign=self._assigned,
            on_revoke=self._revoked,
            clickhouse=self.clickhouse,
        )
        self._joiner = self.loop.create_task(self._join_when_channels_read())
        return self

    async def _join_when_channels_read(self) -> None:
        """Join the group (and so take sellers over) only once every channel is known: a delivery to a
        channel not read yet would fail as "the channel was removed"."""
        assert self.intake is not None
        if not self.channels.ready:
            log.info("notifier: waiting for the channels to be read before taking partitions")
            while not await asyncio.to_thread(self.channels.wait_ready, 1.0):
                pass
        self.intake.start()

    def _assigned(self) -> None:
        """(The intake's thread.) Take up the new sellers' pending deliveries now."""
        self._reload = True
        self.loop.call_soon_threadsafe(self._wake.set)

    def _revoked(self) -> None:
        """(The intake's thread.) Let the revoked sellers go before their partitions move on."""
        assert self.dispatcher is not None
        if self.loop.is_closed():
            return
        try:
            dropped = asyncio.run_coroutine_threadsafe(self.dispatcher.release(), self.loop).result(
                self.settings.notify_timeout_s + 30
            )
        except Exception as exc:  # noqa: BLE001 - the loop is gone or stuck: the next owner may send some again
            log.warning("notifier: could not release revoked sellers' deliveries: %r", exc)
            return
        if dropped:
            log.info("notifier: %d deliveries left to the next owner of their partitions", dropped)

    async def _poll(self) -> None:
        assert self.dispatcher is not None
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.notify_poll_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self.ownership.partitions:
                continue
            full = self._reload or self._since is None
            self._reload = False
            began = store.versions(1)[0]
            try:
                if full:
                    rows = await asyncio.to_thread(store.pending, self.settings)
                else:
                    rows = await asyncio.to_thread(store.pending_since, self.settings, self._since)
            except Exception as exc:  # noqa: BLE001 - ClickHouse away: the next round tries again
                if not self.clickhouse.failed(f"could not look for pending deliveries: {exc}", kind="pending"):
                    log.debug("notifier: could not look for pending deliveries: %s", str(exc)[:200])
                self._reload = self._reload or full
                continue
            self.clickhouse.ok(kind="pending")
            self._since = began - POLL_OVERLAP_NS
            taken = self.dispatcher.adopt(rows)
            if taken:
                log.info("notifier: took up %d pending deliveries stored %s", taken, "before" if full else "elsewhere")

    async def stop(self) -> None:
        for task in (self._joiner, self._poller):
            if task is not None:
                task.cancel()
        if self.intake is not None:
            await asyncio.to_thread(self.intake.stop)
        if self.dispatcher is not None:
            await self.dispatcher.close()


async def start_notifications(state, settings: Settings) -> None:
    """Put the channel book (the routes manage channels on every API process) and, unless
    ``notify`` is off, the notifier on the app's state."""
    state.notifier = None
    state.channels = ChannelBook(settings).start(wait_s=0)  # the API waits for it with its other readers
    if settings.notify:
        state.notifier = await Notifier(settings, state.channels).start()


async def stop_notifications(state) -> None:
    if getattr(state, "notifier", None) is not None:
        await state.notifier.stop()
    if getattr(state, "channels", None) is not None:
        await asyncio.to_thread(state.channels.stop)
