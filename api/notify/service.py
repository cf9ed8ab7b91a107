"""The notifier as the API process runs it: the channel book, the dispatcher and the alert intake, plus
the deliveries a previous run still owed (loaded from ClickHouse at start)."""

from __future__ import annotations

import asyncio
import logging

from api.notify.channels import ChannelBook
from api.notify.dispatch import Dispatcher
from api.notify.intake import AlertIntake
from clickhouse import notify_deliveries as store
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.api.notify")


class Notifier:
    """``poll_s``: also take up, that often, pending deliveries stored by others (the standalone notifier:
    redeliveries asked for through API replicas that do not deliver); 0: only those owed at start."""

    def __init__(self, settings: Settings, channels: ChannelBook, poll_s: float = 0):
        self.settings, self.channels, self.poll_s = settings, channels, poll_s
        self.dispatcher: Dispatcher | None = None
        self.intake: AlertIntake | None = None
        self._poller: asyncio.Task | None = None

    async def start(self) -> Notifier:
        self.dispatcher = Dispatcher(self.settings, self.channels)
        try:
            owed = await asyncio.to_thread(store.pending, self.settings)
        except Exception as exc:  # noqa: BLE001 - not migrated yet, ClickHouse away: new alerts still flow
            log.warning("notifier: could not load pending deliveries: %s", str(exc)[:200])
            owed = []
        self.dispatcher.schedule_all(owed)
        self.intake = AlertIntake(self.settings, self.channels, self.dispatcher.offer_threadsafe).start()
        if self.poll_s:
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        return self

    async def _poll(self) -> None:
        assert self.dispatcher is not None
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                taken = self.dispatcher.adopt(await asyncio.to_thread(store.pending, self.settings))
            except Exception as exc:  # noqa: BLE001 - ClickHouse away: the next round tries again
                log.warning("notifier: could not look for pending deliveries: %s", str(exc)[:200])
                continue
            if taken:
                log.info("notifier: took up %d pending deliveries stored elsewhere", taken)

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        if self.intake is not None:
            await asyncio.to_thread(self.intake.stop)
        if self.dispatcher is not None:
            await self.dispatcher.close()


async def start_notifications(state, settings: Settings) -> None:
    """Put the channel book (the routes manage channels on every API process) and, unless
    ``notify`` is off, the notifier on the app's state."""
    state.notifier = None
    state.channels = await asyncio.to_thread(ChannelBook(settings).start)
    if settings.notify:
        state.notifier = await Notifier(settings, state.channels).start()


async def stop_notifications(state) -> None:
    if getattr(state, "notifier", None) is not None:
        await state.notifier.stop()
    if getattr(state, "channels", None) is not None:
        await asyncio.to_thread(state.channels.stop)
