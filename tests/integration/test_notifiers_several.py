"""Several notifiers in one ``notify_group`` (docs/notifications.md, "Several notifiers"): each sends the
deliveries of the sellers whose ``payment-alerts`` partition it owns, so a pending retry is sent by one of
them, never by both, however the partitions move; a redelivery asked for through an API replica that does
not own the seller is sent by the one that does. Real Kafka, chdb (every notifier in this process: chdb
belongs to one), a real webhook server counting what it received per idempotency key."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter

import pytest
from confluent_kafka.admin import AdminClient

from api.notify.channels import ChannelBook, new_channel
from api.notify.ownership import partition_of
from api.notify.service import Notifier
from clickhouse import notify_deliveries as store
from clickhouse.migrate import migrate
from livemetrics.kafka_config import admin_config
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import stays, wait_until
from tests.support.webhook_server import WebhookServer, hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


class NotifierInThread:
    """A ``Notifier`` with its own channel book on an event loop of its own, as ``livemetrics notifier``
    runs it (in this process: the test's chdb is shared)."""

    def __init__(self, settings):
        self.settings, self.loop = settings, asyncio.new_event_loop()
        self.started = threading.Event()
        self.notifier: Notifier | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self._main()), daemon=True)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        channels = await asyncio.to_thread(ChannelBook(self.settings).start)
        self.notifier = await Notifier(self.settings, channels).start()
        self.started.set()
        try:
            await self._stop.wait()
        finally:
            await self.notifier.stop()
            await asyncio.to_thread(channels.stop)

    def start(self) -> NotifierInThread:
        self.thread.start()
        assert self.started.wait(60), "the notifier did not start"
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)


class NotifierGroup:
    """The notifiers' consumer group as the broker describes it (one admin client for the test)."""

    def __init__(self, s):
        self.s, self.admin = s, AdminClient(admin_config(s))

    def assignment(self) -> list[list[int]]:
        """The partitions of each member."""
        group = self.admin.describe_consumer_groups([self.s.notify_group], request_timeout=5)[self.s.notify_group]
        members = group.result(timeout=30).members
        return [sorted(tp.partition for tp in (m.assignment.topic_partitions if m.assignment else [])) for m in members]

    def members_with_partitions(self) -> int:
        return sum(1 for parts in self.assignment() if parts)


def one_seller_per_partition(s) -> list[str]:
    sellers: dict[int, str] = {}
    i = 0
    while len(sellers) < s.partitions:
        sellers.setdefault(partition_of(f"shop-{i}", s.partitions), f"shop-{i}")
        i += 1
    return list(sellers.values())


def successes(hooks: WebhookServer, path: str, since: int) -> Counter:
    """Idempotency keys of the requests ``path`` received from index ``since`` on (answered 2xx)."""
    return Counter(r.headers["idempotency-key"] for r in hooks.endpoints[path].received[since:])


def test_two_notifiers_send_a_pending_retry_once(make_settings, hooks, caplog):
    caplog.set_level(logging.INFO, logger="livemetrics.api.notify")  # shown if it fails: assignments, releases
    # Retries every 0.25-0.5 s while the endpoints fail, so both notifiers would send each one soon
    # after they recover, if both held it.
    s = make_settings(dev_mode=True, notify_poll_s=0.5, notify_timeout_s=2.0, notify_backoff_s=0.5,
                      notify_backoff_max_s=0.5)  # fmt: skip
    migrate(s)
    sellers = one_seller_per_partition(s)  # wherever the partitions go, each notifier gets some retries
    book = ChannelBook(s).start()
    for seller in sellers:
        ch, _ = new_channel(seller, "webhook", hooks.url(f"/{seller}", "fail"), s.key_encryption_key.get_secret_value())
        book.add(ch)
    book.stop()
    first = NotifierInThread(s).start()
    second = None
    try:
        wait_until(lambda: first.notifier.intake.assigned.is_set(), 60, what="the first notifier assigned")
        wait_until(lambda: len(first.notifier.channels.of_seller(sellers[-1])) == 1, 30, what="channels read")
        send(s, *(alert(seller, f"{seller}-alert") for seller in sellers))
        # Each alert failed at least twice: its retry waits in the first notifier, its row is pending.
        wait_until(lambda: all(len(hooks.endpoints[f"/{x}"].received) >= 2 for x in sellers), 30, what="failed twice")
        wait_until(lambda: len(store.pending(s)) == len(sellers), 15, what="pending rows")

        second = NotifierInThread(s).start()
        group = NotifierGroup(s)
        try:
            wait_until(
                lambda: group.members_with_partitions() == 2, 60, interval=0.5, what="the partitions split between two"
            )
        except AssertionError as exc:
            raise AssertionError(
                f"group {group.assignment()}; channels read {first.notifier.channels.ready} "
                f"{second.notifier.channels.ready}; assigned {first.notifier.intake.assigned.is_set()} "
                f"{second.notifier.intake.assigned.is_set()}; owned {sorted(first.notifier.ownership.partitions)} "
                f"{sorted(second.notifier.ownership.partitions)}"
            ) from exc
        wait_until(
            lambda: first.notifier.intake.assigned.is_set() and second.notifier.intake.assigned.is_set(),
            30,
            what="both assigned",
        )
        since = {}
        with hooks._lock:  # from here on each endpoint answers 200: what it received next succeeded
            for seller in sellers:
                since[seller] = len(hooks.endpoints[f"/{seller}"].received)
                hooks.endpoints[f"/{seller}"].mode = "ok"
        for seller in sellers:
            wait_until(lambda x=seller: successes(hooks, f"/{x}", since[x]), 30, what=f"{seller} delivered")
        wait_until(lambda: not store.pending(s), 15, what="no delivery pending")
        # Once each: no second notifier sends a retry it took up from the other's pending row.
        stays(
            lambda: all(successes(hooks, f"/{x}", since[x]) == {f"{x}-alert": 1} for x in sellers),
            3.0,
            what="one successful delivery per idempotency key",
        )
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_a_redelivery_through_a_replica_that_does_not_own_the_seller(make_settings, add_seller, hooks):
    s = make_settings(dev_mode=True, notify_poll_s=0.5, **FAST_RETRIES)
    migrate(s)
    seller = "shop-r"
    tokens = {seller: add_seller(s, seller)[1]}
    replicas = [Api(s, tokens), Api(s, tokens)]  # two API replicas that both deliver
    try:
        group = NotifierGroup(s)
        wait_until(
            lambda: group.members_with_partitions() == 2, 60, interval=0.5, what="the partitions split between two"
        )
        wait_until(lambda: all(r.app.state.notifier.intake.assigned.is_set() for r in replicas), 30, what="assigned")
        [owner] = [r for r in replicas if r.app.state.notifier.ownership.owns(seller)]
        [other] = [r for r in replicas if r is not owner]
        assert other.call("POST", seller, "/webhooks", json={"url": hooks.url("/r")}).status_code == 201
        wait_until(lambda: owner.app.state.channels.of_seller(seller), 30, what="the owner has the channel")
        send(s, alert(seller, "r-1"))
        wait_until(lambda: hooks.endpoints["/r"].received, 30, what="delivered")
        [done] = wait_until(lambda: other.deliveries(seller, status="delivered"), 30, what="delivered recorded")

        # Asked through the replica that does not own the seller: stored as pending there, sent by the owner
        # (its regular look at the rows changed since the last one).
        r = other.call("POST", seller, f"/deliveries/{done['delivery_id']}/redeliver")
        assert r.status_code == 202 and r.json()["status"] == "pending", r.text
        wait_until(lambda: len(hooks.endpoints["/r"].received) == 2, 30, what="the redelivery sent")
        wait_until(lambda: other.deliveries(seller, status="delivered"), 30, what="the redelivery recorded")
        stays(lambda: len(hooks.endpoints["/r"].received) == 2, s.notify_poll_s * 4, what="two sends, no third")
        assert successes(hooks, "/r", 0) == {"r-1": 2}
    finally:
        for r in replicas:
            r.stop()
        replicas[0].registry.stop()
        replicas[1].registry.stop()
