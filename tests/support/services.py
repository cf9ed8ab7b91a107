"""Where the tests' Kafka and ClickHouse come from, in this order:
1. an address from the environment (``LIVEMETRICS_TEST_KAFKA``, ``LIVEMETRICS_TEST_CLICKHOUSE``);
2. a testcontainers container, when a Docker daemon answers;
3. the project's own launcher (a local Kafka broker) / an embedded chdb directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from livemetrics.settings import Settings
from operations.kafka_local import LocalKafka
from operations.kafka_throwaway import throwaway_kafka
from operations.ports import free_port  # the tests import it from here too


def free_stepped_ports(n: int, step: int = 2) -> int:
    """A port p with p, p + step, ... (n of them) free now: for what derives its ports by steps from one
    (the CLI's cluster puts its controllers on kafka_controller_port + 2i)."""
    for _ in range(100):
        base = free_port()
        try:
            for i in range(1, n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + step * i))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no run of {n} free ports {step} apart")


def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def local_kafka(data_dir: Path) -> Iterator[tuple[str, LocalKafka]]:
    """A broker of our own on free ports (``operations/kafka_throwaway.py``); stopped afterwards."""
    with throwaway_kafka(data_dir, wait_s=90, heap=os.environ.get("LIVEMETRICS_TEST_KAFKA_HEAP", "768m")) as lk:
        yield lk.settings.kafka_bootstrap, lk


@contextmanager
def local_cluster(data_dir: Path, brokers: int = 3):
    """A local KRaft cluster of our own on free ports (``livemetrics kafka start --brokers N``); stopped
    afterwards. Yields the ``LocalCluster``: ``client_settings()`` has its bootstrap and replication."""
    from operations.kafka_cluster import LocalCluster

    cluster = LocalCluster(
        Settings(data_dir=data_dir), brokers, ports=[(free_port(), free_port()) for _ in range(brokers)]
    )
    cluster.start(wait_s=150, quiet=True, die_with_parent=True)  # not left running if the test process is killed
    try:
        yield cluster
    finally:
        cluster.stop(wait_s=5)


def kafka_container_env(host_port: int) -> dict[str, str]:
    """The environment of a single-node KRaft broker from the Apache image, advertising ``host_port``."""
    return {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{host_port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }


def kafka_container(host_port: int, image: str = "apache/kafka:4.0.1"):
    """A broker of the same Kafka version as the local launcher, from the Apache image (not started).

    testcontainers' ``KafkaContainer`` only knows Confluent's images (its ``with_kraft()`` rejects a tag
    like 4.0.1), so this is a plain container whose client port is bound to a fixed free host port: the
    advertised listener is known before it starts. Unproven on this machine (no Docker daemon: building
    the container object already needs one); tests/unit/test_services_container.py checks the set-up."""
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image).with_bind_ports(9092, host_port)
    for k, v in kafka_container_env(host_port).items():
        container = container.with_env(k, v)
    return container


@contextmanager
def kafka_bootstrap(tmp: Path) -> Iterator[str]:
    env = os.environ.get("LIVEMETRICS_TEST_KAFKA")
    if env:
        yield env
        return
    if docker_answers():
        port = free_port()
        with kafka_container(port) as kc:
            from testcontainers.core.waiting_utils import wait_for_logs

            wait_for_logs(kc, "Kafka Server started", timeout=120)
            yield f"127.0.0.1:{port}"
        return
    with local_kafka(tmp / "kafka-session") as (bootstrap, _):
        yield bootstrap


@contextmanager
def clickhouse_dsn(tmp: Path) -> Iterator[str]:
    env = os.environ.get("LIVEMETRICS_TEST_CLICKHOUSE")
    if env:
        yield env
        return
    if docker_answers():
        from testcontainers.community.clickhouse import ClickHouseContainer

        with ClickHouseContainer("clickhouse/clickhouse-server:25.8") as ch:
            host, port = ch.get_container_host_ip(), ch.get_exposed_port(8123)
            yield f"http://{ch.username}:{ch.password}@{host}:{port}"
        return
    # One chdb directory for the whole test process (chdb allows one process per directory);
    # each test gets its own database inside it.
    yield f"chdb://{tmp / 'chdb'}"
