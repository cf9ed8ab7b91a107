"""``livemetrics notifier``: the notifier in a process of its own, for deployments whose API runs as
several replicas (they run with ``LIVEMETRICS_NOTIFY=false``; docs/notifications.md).

It delivers the alerts and pending deliveries of the sellers whose ``payment-alerts`` partitions it is
assigned in ``notify_group`` (api/notify/ownership.py), including redeliveries an API replica stores
(taken up within ``notify_poll_s``). Several may run: they split the sellers as Kafka splits the
partitions, and one that stops or dies leaves its sellers to the others. It needs a ClickHouse server:
embedded chdb belongs to one process.

/healthz, /readyz and /metrics on ``notifier_ops_port`` (livemetrics/ops_http.py): ready once the
channels are read and the alert partitions assigned; /healthz 503 and, later, an exit with code 70 when
its event loop is stuck (livemetrics/loop_watch.py, as the worker's)."""

from __future__ import annotations

import asyncio
import logging
import signal

from api.notify.channels import ChannelBook
from api.notify.service import Notifier
from livemetrics.loop_watch import watching
from livemetrics.ops_http import OpsServer
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.api.notify")


def ready(channels: ChannelBook, notifier: Notifier) -> tuple[bool, dict]:
    assigned = notifier.intake is not None and notifier.intake.assigned.is_set()
    backlog = notifier.dispatcher.backlog() if notifier.dispatcher else {}
    details = {"channels_read": channels.ready, "alerts_assigned": assigned, **backlog}
    return channels.ready and assigned, details


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Deliver until ``stop`` is set."""
    channels = await asyncio.to_thread(ChannelBook(settings).start)
    notifier = await Notifier(settings, channels).start()
    # /healthz is served from a thread: it asks the loop's heartbeat, and a stuck loop ends the process.
    async with watching("notifier", settings.loop_stale_s, settings.loop_stuck_exit_s) as watch:
        ops = None
        if settings.notifier_ops_port:
            ops = OpsServer(
                "notifier", settings.host, settings.notifier_ops_port, lambda: ready(channels, notifier), watch.health
            ).start()
        log.info("notifier delivering alerts (group %s)", settings.notify_group)
        try:
            await stop.wait()
        finally:
            if ops is not None:
                ops.stop()
            await notifier.stop()
            await asyncio.to_thread(channels.stop)


def run(settings: Settings) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
    return 0
