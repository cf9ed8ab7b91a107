"""``livemetrics notifier``: the notifier in a process of its own, for deployments whose API runs as
several replicas (they run with ``LIVEMETRICS_NOTIFY=false``; docs/notifications.md).

Run exactly one: it owns every alert of ``notify_group`` and every pending delivery, including those an
API replica stores when a seller asks for a redelivery (taken up every ``notify_poll_s``). A second one
would share the alerts but also take up the other's retries and send them twice; a supervisor that
restarts the one is the availability story (nothing is lost meanwhile: alerts wait in Kafka, owed
deliveries in ClickHouse). It needs a ClickHouse server: embedded chdb belongs to the API process.

/healthz, /readyz and /metrics on ``notifier_ops_port`` (livemetrics/ops_http.py): ready once the
channels are read and the alert partitions assigned."""

from __future__ import annotations

import asyncio
import logging
import signal

from api.notify.channels import ChannelBook
from api.notify.service import Notifier
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
    notifier = await Notifier(settings, channels, poll_s=settings.notify_poll_s).start()
    ops = None
    if settings.notifier_ops_port:
        ops = OpsServer(
            "notifier", settings.host, settings.notifier_ops_port, lambda: ready(channels, notifier)
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
