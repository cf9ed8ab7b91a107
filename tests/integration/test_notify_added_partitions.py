"""The notifier when partitions are added to payment-alerts while it runs (real Kafka, chdb, a real webhook server):
an alert the worker writes to a new partition is delivered, within the intake's metadata refresh and a rebalance,
and none is skipped by where the intake starts reading the new partition (api/notify/intake.py)."""

from __future__ import annotations

import msgspec
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewPartitions

from api.notify.ownership import partition_of
from clickhouse.migrate import migrate
from livemetrics.kafka_config import admin_config, producer_config
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import wait_until
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
    partitions); stored, by its delivery report (``flush`` returns 0 for a message that failed too)."""
    p = Producer(producer_config(s))
    reports: list = []
    p.produce(
        topic,
        key=seller.encode(),
        value=msgspec.json.encode(alert(seller, alert_id)),
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
