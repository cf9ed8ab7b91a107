"""Secure mode on the local broker (its own broker: SASL/SCRAM-SHA-512, StandardAuthorizer, the ACLs of
livemetrics/kafka_acls.py): who can log in, and what each principal may write and read."""

from __future__ import annotations

import secrets
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from pydantic import SecretStr

from livemetrics import keys
from livemetrics.kafka_config import admin_config, base_config, producer_config
from livemetrics.settings import Settings
from livemetrics.topics import create_topics
from operations.kafka_local import KafkaLaunchError, LocalKafka
from tests.support.servers import wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure(tmp_path_factory) -> Settings:
    """A secure broker of its own, its topics and ACLs; the settings log in as admin."""
    passwords = {f"kafka_{r}_password": secrets.token_urlsafe(24) for r in ("admin", "gateway", "worker", "api")}
    s = Settings(
        data_dir=tmp_path_factory.mktemp("secure"),
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        kafka_security="sasl",
        topic_prefix="acl.",
        app_id="lm-acl",
        sink_group="sink-acl",
        delivery_timeout_ms=5000,
        **passwords,
    )
    lk = LocalKafka(s)
    assert "SASL/SCRAM logins only" in lk.start(quiet=True)
    try:
        create_topics(s)
        yield s
    finally:
        lk.stop()


def as_role(s: Settings, role: str) -> Settings:
    return s.model_copy(update={"kafka_role": role})


def produce(conf: dict, topic: str, timeout: float = 10.0, partition: int = 0) -> KafkaError | None:
    """Produce one record; the delivery error (None: stored)."""
    p = Producer({**conf, "message.timeout.ms": int(timeout * 1000)})
    result: list = []
    p.produce(topic, key=b"k", value=b'{"x": 1}', partition=partition, on_delivery=lambda err, _msg: result.append(err))
    p.flush(timeout + 5)
    assert result, "no delivery report"
    return result[0]


def read_one(conf: dict, topic: str, timeout: float = 10.0):
    """The first record of partition 0 of ``topic`` (assigned, as the key registry reads), or the error the
    broker answered instead (a topic the principal may not see is refused in its metadata already)."""
    c = Consumer({**conf, "group.id": "unused", "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        refused = c.list_topics(topic, timeout=timeout).topics[topic].error
        if refused is not None:
            return refused
        c.assign([TopicPartition(topic, 0, 0)])
        msg = c.poll(timeout)
        assert msg is not None, f"nothing read from {topic} within {timeout}s"
        return msg.error() or msg
    finally:
        c.close()


def test_a_client_without_credentials_is_refused(secure):
    plain = secure.model_copy(update={"kafka_security": "plaintext"})
    with pytest.raises(KafkaException) as refused:
        AdminClient(admin_config(plain)).list_topics(timeout=5)
    assert refused.value.args[0].code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT)
    assert produce(base_config(plain), secure.topic("page-events"), timeout=3) is not None


def first_client_error(conf: dict, timeout: float = 10.0) -> KafkaError | None:
    """The first error a client reports through ``error_cb`` (a refused login), None if none in ``timeout``."""
    errors: list[KafkaError] = []
    p = Producer({**conf, "error_cb": errors.append})
    deadline = time.monotonic() + timeout
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    return errors[0] if errors else None


def test_a_wrong_password_is_refused(secure):
    wrong = as_role(secure, "gateway").model_copy(
        update={"kafka_gateway_password": SecretStr(secrets.token_urlsafe(24))}
    )
    refused = first_client_error(base_config(wrong))
    assert refused is not None and refused.code() == KafkaError._AUTHENTICATION, refused
    with pytest.raises(KafkaException):
        AdminClient(admin_config(wrong)).list_topics(timeout=3)
    assert first_client_error(base_config(as_role(secure, "gateway")), timeout=2) is None  # the right one logs in


def test_the_gateway_writes_raw_topics_only_and_cannot_read_alerts(secure):
    gateway = producer_config(as_role(secure, "gateway"))
    assert produce(gateway, secure.topic("page-events")) is None
    refused = produce(gateway, secure.topic("seller-keys"))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce(producer_config(secure), secure.topic("payment-alerts")) is None  # admin writes one
    read = read_one(base_config(as_role(secure, "gateway")), secure.topic("payment-alerts"))
    assert isinstance(read, KafkaError) and read.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert not isinstance(read_one(base_config(as_role(secure, "api")), secure.topic("payment-alerts")), KafkaError)


def test_only_the_admin_writes_seller_keys(secure):
    for role in ("gateway", "worker", "api"):
        refused = produce(producer_config(as_role(secure, role)), secure.topic("seller-keys"))
        assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, role
    # The admin can: a key it publishes reaches the gateway's registry, read as the gateway.
    browser, rec = keys.new_key("pk", f"shop-{uuid.uuid4().hex[:6]}")
    keys.publish(secure, rec)
    registry = keys.KeyRegistry(as_role(secure, "gateway")).start()
    try:
        assert registry.wait_for(rec.key_id) and registry.authenticate(browser, ("browser",)) == rec
    finally:
        registry.stop()


def test_the_worker_cannot_read_seller_keys(secure):
    read = read_one(base_config(as_role(secure, "worker")), secure.topic("seller-keys"))
    assert isinstance(read, KafkaError) and read.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_gateway_reads_the_worker_groups_lag(secure):
    """Overload protection (producers/gateway/worker_lag.py) reads the worker group's committed offsets as
    the gateway: DESCRIBE on the group (without it, GROUP_AUTHORIZATION_FAILED and no protection)."""
    from livemetrics.kafka_config import consumer_config
    from producers.gateway.worker_lag import LagProbe

    assert produce(producer_config(as_role(secure, "gateway")), secure.topic("page-events")) is None
    worker = Consumer(consumer_config(as_role(secure, "worker"), secure.app_id))
    try:
        worker.commit(offsets=[TopicPartition(secure.topic("page-events"), 0, 0)], asynchronous=False)
    finally:
        worker.close()
    got = LagProbe(as_role(secure, "gateway")).read()
    assert got is not None and got[0] >= 1, got


def test_gateway_worker_and_api_run_end_to_end_in_secure_mode(secure, clickhouse_dsn, tmp_path):
    """Each part logs in as its own principal: an event sent to the gateway reaches the worker's live
    numbers on the API and the API's sink stores it in ClickHouse."""
    from api.main import create_api
    from clickhouse.client import get_client
    from producers.gateway.app import create_gateway
    from tests.support import factories as f
    from tests.support.servers import ThreadServer, WorkerProcess
    from tests.support.stack import Stack, module_settings, new_seller

    passwords = {
        f"kafka_{r}_password": getattr(secure, f"kafka_{r}_password") for r in ("admin", "gateway", "worker", "api")
    }
    s = module_settings(secure.kafka_bootstrap, clickhouse_dsn, tmp_path, kafka_security="sasl", **passwords)
    sellers = {"shop": new_seller(s, "shop"), "warmup": new_seller(s, "warmup")}  # as admin
    stack = Stack.__new__(Stack)
    stack.settings, stack.log_dir, stack.sellers = s, tmp_path, sellers
    gateway, api = as_role(s, "gateway"), as_role(s, "api")
    stack.registry = keys.KeyRegistry(gateway).start()
    stack.worker = WorkerProcess(as_role(s, "worker"), tmp_path).start()
    stack.gateway = ThreadServer(create_gateway(gateway, stack.registry)).start()
    stack.api = ThreadServer(create_api(api)).start()
    try:
        stack.warm_up()
        browser, token = sellers["shop"]
        assert stack.post(browser, f.page_view(session_id="secure-0001")).status_code == 202
        wait_until(lambda: stack.live("shop", token)["live"]["home"] == 1, 30, interval=0.2, what="live home view")
        stored = f"SELECT count() FROM {s.clickhouse_database}.events WHERE seller_id = 'shop'"
        wait_until(
            lambda: get_client(api).query(stored).result_rows[0][0] == 1,
            30,
            interval=0.2,
            what="the API's sink stored the event",
        )
        # What the sink checks at an assignment (clickhouse/sink_logs.py) is readable by its principal: the raw
        # topics' retention (else "not checked" at each reset) and the worker's changelog (else no split seen).
        admin = AdminClient(admin_config(api))  # kept to the end of the test: librdkafka #3663
        for resource, future in admin.describe_configs(
            [ConfigResource(ConfigResource.Type.TOPIC, s.topic("page-events"))]
        ).items():
            assert int(future.result(timeout=10)["retention.ms"].value) > 0, resource
        c = Consumer({**base_config(api), "group.id": "unused"})
        try:
            assert f"{s.app_id}-sessions-changelog" in c.list_topics(timeout=10).topics
        finally:
            c.close()
    finally:
        stack.close()


def test_the_topic_watches_see_grown_and_recreated_topics_as_their_readers_principals(secure):
    """The group-less readers' topic watches (livemetrics/topic_watch.py) describe their topics as the principal
    their process logs in as, with the ACLs of livemetrics/kafka_acls.py: the API's (seller keys, channels, the
    live feed's three topics) and the gateway's (seller keys, ip-salts) see partitions added, and a topic created
    again is seen by its new id (without it, a new log grown past the reader's position loses its start)."""
    from confluent_kafka.admin import NewPartitions

    from livemetrics.topic_watch import TopicWatch

    s = secure.model_copy(update={"topic_prefix": f"w{uuid.uuid4().hex[:6]}."})
    create_topics(s)  # as admin: the topics and their ACLs, this prefix's
    admin = AdminClient(admin_config(s))  # kept to the end of the test: librdkafka #3663
    watched = {
        "api": ["seller-keys", "seller-channels", "live-metrics", "payment-alerts", "erasures"],
        "gateway": ["seller-keys", "ip-salts"],
    }
    counts = {
        t: len(m.partitions) for t, m in admin.list_topics(timeout=10).topics.items() if t.startswith(s.topic(""))
    }
    watches = [TopicWatch(as_role(s, role), s.topic(name), role) for role, names in watched.items() for name in names]
    try:
        for w in watches:
            w.remember(list(range(counts[w.topic])))
        grown = {s.topic(name) for names in watched.values() for name in names}
        for fut in admin.create_partitions([NewPartitions(t, counts[t] + 1) for t in grown]).values():
            fut.result(30)
        for w in watches:
            change = wait_until(lambda: w.look(), 30, what=f"{w.reader} seeing {w.topic} grown")  # noqa: B023
            assert not change.recreated and change.added == [counts[w.topic]], (w.reader, w.topic, change)
        keys_topic = s.topic("seller-keys")
        admin.delete_topics([keys_topic])[keys_topic].result(30)
        wait_until(lambda: keys_topic not in admin.list_topics(timeout=10).topics, 60, what="deleted")
        create_topics(s)
        for w in [w for w in watches if w.topic == keys_topic]:
            change = wait_until(lambda: w.look(), 30, what=f"{w.reader} seeing {w.topic} created again")  # noqa: B023
            assert change.recreated, (w.reader, change)
    finally:
        for w in watches:
            w.close()


def test_a_broker_formatted_for_sasl_refuses_to_start_plaintext(secure):
    plain = LocalKafka(secure.model_copy(update={"kafka_security": "plaintext"}))
    with pytest.raises(KafkaLaunchError, match="formatted for LIVEMETRICS_KAFKA_SECURITY=sasl, not plaintext"):
        plain.check_formatted()


@pytest.mark.long
def test_a_secure_cluster_enforces_the_acls_as_soon_as_they_are_applied(secure, tmp_path):
    """3 nodes in secure mode. The ACLs reach each broker from the metadata log a moment after the controller
    commits them: a gateway writing right after `kafka topics` was refused until apply_acls waited for them."""
    from operations.kafka_cluster import LocalCluster
    from tests.support.services import free_stepped_ports

    s = secure.model_copy(
        update={
            "data_dir": tmp_path,
            "kafka_bootstrap": f"127.0.0.1:{free_stepped_ports(3)}",
            "kafka_controller_port": free_stepped_ports(3),
        }
    )
    cluster = LocalCluster(s, brokers=3)
    try:
        assert "cluster of 3 running" in cluster.start(quiet=True)
        clients = cluster.client_settings()
        create_topics(clients)
        gateway = producer_config(as_role(clients, "gateway"))
        for partition in range(clients.partitions):  # each led by one of the nodes
            assert produce(gateway, clients.topic("page-events"), partition=partition) is None, partition
        refused = produce(gateway, clients.topic("seller-keys"))
        assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        cluster.stop()
