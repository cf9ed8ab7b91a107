"""The notifier when partitions are added to payment-alerts while it runs (real Kafka, chdb, a real webhook server):
an alert the worker writes to a new partition is delivered, within the intake's metadata refresh and a rebalance,
and none is skipped by where the intake starts reading the new partition (api/notify/intake.py)."""

from __future__ import annotations

import time

import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions

from api.notify.channels import ChannelBook
from api.notify.intake import AlertIntake
from api.notify.ownership import partition_of
from clickhouse.migrate import migrate
from livemetrics.kafka_config import admin_config, base_config
from tests.support.kafka_write import writer
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import stays, wait_until
from tests.support.webhook_server import hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def _grow(s, admin: AdminClient, topic: str, grown: int) -> None:
    for fut in admin.create_partitions([NewPartitions(topic, grown)], operation_timeout=30).values():
        fut.result()
    wait_until(
        lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == grown,
        30,
        what="the new partitions listed by the broker",
    )


def _write_alert(s, topic: str, seller: str, alert_id: str, partition: int) -> None:
    """As the worker writes it, to ``partition`` (its producer's partitioner, murmur2, once it knows the new
    partitions)."""
    _write(s, topic, alert(seller, alert_id), partition)


def _write(s, topic: str, a: dict, partition: int) -> None:
    """``a`` to ``partition``, stored: by its delivery report (``flush`` returns 0 for a message that failed too)."""
    p = writer(s)
    reports: list = []
    p.produce(
        topic,
        key=a["seller_id"].encode(),
        value=msgspec.json.encode(a),
        partition=partition,
        on_delivery=lambda err, msg: reports.append((err, msg.partition())),
    )
    assert p.flush(30) == 0 and reports == [(None, partition)], reports


def _setup(make_settings):
    s = make_settings(dev_mode=True, **FAST_RETRIES)
    migrate(s)
    grown = s.partitions + 2
    # a seller whose alerts go to a new partition once the topic has grown (the worker's partitioner, murmur2)
    seller = next(f"shop-{i}" for i in range(1000) if partition_of(f"shop-{i}", grown) >= s.partitions)
    return s, s.topic("payment-alerts"), grown, seller


def test_an_alert_on_a_partition_added_while_the_notifier_runs_is_delivered(make_settings, add_seller, hooks):
    s, topic, grown, seller = _setup(make_settings)
    admin = AdminClient(admin_config(s))  # kept alive to the end: librdkafka can abort when one closes mid-request
    api = Api(s, {seller: add_seller(s, seller)[1]})
    try:
        assert api.call("POST", seller, "/webhooks", json={"url": hooks.url("/a", "ok")}).status_code == 201
        send(s, alert(seller, "before"))
        wait_until(lambda: len(api.deliveries(seller, status="delivered")) == 1, 30, what="the alert before")
        _grow(s, admin, topic, grown)
        # at once: the alert waits on the new partition until the notifier's group is given it
        _write_alert(s, topic, seller, "on-new", partition_of(seller, grown))
        wait_until(
            lambda: len(api.deliveries(seller, status="delivered")) == 2,
            90,  # the intake's metadata refresh, a rebalance, a send; room for a loaded machine
            interval=0.5,
            what="the alert on the added partition delivered",
        )
        assert partition_of(seller, grown) in api.app.state.notifier.intake.ownership.partitions
    finally:
        api.stop()
        api.registry.stop()


def test_an_alert_on_a_partition_added_while_no_notifier_ran_is_delivered_at_the_next_start(
    make_settings, add_seller, hooks
):
    """The group's first start commits where it began (no alert consumed yet); the partition added later has no
    committed offset and is read from its start at the next assignment, not from its end."""
    s, topic, grown, seller = _setup(make_settings)
    admin = AdminClient(admin_config(s))  # kept alive to the end (#3663)
    api = Api(s, {seller: add_seller(s, seller)[1]})
    try:
        assert api.call("POST", seller, "/webhooks", json={"url": hooks.url("/a", "ok")}).status_code == 201
        api.stop()
        _grow(s, admin, topic, grown)
        _write_alert(s, topic, seller, "on-new", partition_of(seller, grown))
        api.start()
        wait_until(
            lambda: len(api.deliveries(seller, status="delivered")) == 1,
            60,
            interval=0.5,
            what="the alert written to the added partition while no notifier ran",
        )
    finally:
        api.stop()
        api.registry.stop()


@pytest.mark.parametrize("committed", ["ends", "time only"])
def test_a_notifier_starting_with_the_groups_first_one_reads_from_the_first_start_not_the_partitions_start(
    make_settings, add_seller, hooks, committed
):
    """Two notifiers at the group's very first start: the first commits where it began (``ends``: the end of every
    partition, and its time, here 10 minutes ahead of the worker's clock, which no start depends on; ``time
    only``: its time, as notifiers before the ends did); the second, finding those commits, reads its own
    partitions (no commit yet) from where the first start says: not from their start, which would send the alerts
    from before the first start."""
    s, topic, _, seller = _setup(make_settings)
    mine = partition_of(seller, s.partitions)
    other = next(p for p in range(s.partitions) if p != mine)
    old, new = alert(seller, "before-first-start"), alert(seller, "after-first-start")
    # The seller's webhook, from an API that does not deliver (no notifier of the group has started yet).
    api = Api(s.model_copy(update={"notify": False}), {seller: add_seller(s, seller)[1]})
    try:
        assert api.call("POST", seller, "/webhooks", json={"url": hooks.url("/a", "ok")}).status_code == 201
        api.stop()
        _write(s, topic, old, mine)
        # The first notifier's first start, as its intake commits it: the end of its partition, and the time.
        first = Consumer({**base_config(s), "group.id": s.notify_group, "enable.auto.commit": False})
        try:
            ends = [first.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(s.partitions)]
            if committed == "ends":
                began_ms = int(time.time() * 1000) + 600_000  # the first notifier's clock ahead: not asked
                meta = f"start={began_ms};ends={','.join(map(str, ends))}"
            else:
                began_ms = int(time.time() * 1000) + 1  # after the old alert's timestamp
                meta = f"start={began_ms}"
            first.commit(offsets=[TopicPartition(topic, other, ends[other], metadata=meta)], asynchronous=False)
        finally:
            first.close()
        if committed == "time only":
            wait_until(lambda: time.time() * 1000 > began_ms, 5, what="the clock past the first start")
        _write(s, topic, new, mine)
        api.settings = s  # the second notifier
        api.start()
        wait_until(
            lambda: api.deliveries(seller, status="delivered"), 60, interval=0.5, what="the alert after the start"
        )
        # Read in order from one partition: had the old alert been read, its delivery would be recorded by now.
        stays(
            lambda: [d["alert_id"] for d in api.deliveries(seller)] == ["after-first-start"],
            3,
            what="only the alert written after the group's first start",
        )
    finally:
        api.stop()
        api.registry.stop()


def test_an_alert_on_a_partition_added_after_the_first_start_is_taken_with_the_notifiers_clock_minutes_ahead(
    make_settings, add_seller, hooks
):
    """The alerts carry the worker's clock (their CreateTime), the first start's commits the notifier's: with the
    notifier's clock 10 minutes ahead, an alert the worker writes to a partition added after the group's first
    start is stamped before that start. Where the added partition is read from must depend on neither clock: the
    partition did not exist at the first start, so all of it is read. (With the start as a time, the intake read it
    from the first alert stamped after the start: none, so from its end, and the alert was never taken.)"""
    s, topic, grown, seller = _setup(make_settings)
    admin = AdminClient(admin_config(s))  # kept alive to the end (#3663)
    api = Api(s.model_copy(update={"notify": False}), {seller: add_seller(s, seller)[1]})  # the webhook only
    try:
        assert api.call("POST", seller, "/webhooks", json={"url": hooks.url("/a", "ok")}).status_code == 201
    finally:
        api.stop()
    book = ChannelBook(s).start()
    taken: list[str] = []
    # The notifier's intake alone (what it hands over is what it took), its wall clock 10 minutes ahead.
    intake = AlertIntake(s, book, lambda owed: taken.extend(d.alert_id for d in owed), clock=lambda: time.time() + 600)
    try:
        wait_until(lambda: book.of_seller(seller), 15, what="the seller's webhook read")
        intake.start()
        wait_until(intake.assigned.is_set, 60, what="the group's first start")
        _grow(s, admin, topic, grown)
        _write_alert(s, topic, seller, "on-new", partition_of(seller, grown))
        wait_until(
            lambda: taken == ["on-new"],
            90,  # the intake's metadata refresh and a rebalance; room for a loaded machine
            interval=0.5,
            what="the alert on the added partition taken",
        )
    finally:
        intake.stop()
        book.stop()
