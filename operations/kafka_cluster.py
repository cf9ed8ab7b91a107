"""A local Apache Kafka cluster of N KRaft nodes (``livemetrics kafka start --brokers 3``), for tests and
for trying the many-machine setup on one machine.

Each node is a combined broker+controller (one JVM, ``kafka_cluster_heap`` each) with its own ports and
``<data_dir>/kafka-cluster/node-<id>``; node i (0-based) listens on the bootstrap port + 2i and the
controller port + 2i unless ``kafka_bootstrap`` lists N addresses. The cluster is replicated for real:
every internal topic has min(3, N) replicas, ``min.insync.replicas`` = replicas - 1, unclean leader
election is off. With 3 combined nodes, two down also means no controller quorum: the survivor keeps
no write path (the gateway answers 503) until one comes back.

``cluster.json`` in that directory records the nodes, so ``kafka stop`` and ``kafka status`` find them.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from livemetrics.settings import Settings
from operations.kafka_local import KafkaLaunchError, LocalKafka
from operations.kafka_secure import format_args, listener_lines

HOST = "127.0.0.1"


@dataclass
class ClusterNode(LocalKafka):
    """One combined broker+controller of the cluster; ``settings`` holds its own address and ports."""

    node_id: int = 1
    voters: str = ""  # controller.quorum.voters of the whole cluster
    replicas: int = 3  # replication of Kafka's internal topics
    cluster_id: str = ""  # the same for every node

    @property
    def home(self) -> Path:
        return self.settings.data_dir.resolve() / "kafka-cluster" / f"node-{self.node_id}"

    def _properties(self) -> Path:
        host, port = self.host_port
        cport = self.settings.kafka_controller_port
        isr = max(1, self.replicas - 1)
        props = self.home / "server.properties"
        props.touch(mode=0o600)
        props.chmod(0o600)  # secure mode writes the admin password into it
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters}",
                    *listener_lines(self.settings, host, port, cport),
                    f"log.dirs={self.home / 'data'}",
                    "num.partitions=3",
                    f"default.replication.factor={self.replicas}",
                    f"min.insync.replicas={isr}",
                    # A replica that missed acknowledged writes never leads: a partition waits for an in-sync one.
                    "unclean.leader.election.enable=false",
                    f"offsets.topic.replication.factor={self.replicas}",
                    "offsets.topic.num.partitions=10",
                    f"transaction.state.log.replication.factor={self.replicas}",
                    f"transaction.state.log.min.isr={isr}",
                    f"share.coordinator.state.topic.replication.factor={self.replicas}",
                    f"share.coordinator.state.topic.min.isr={isr}",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "log.retention.check.interval.ms=60000",
                    "",
                ]
            )
        )
        return props

    def _java(self, *args: str, heap: str | None = None) -> list[str]:
        """The broker JVM with the C1 compiler only: three JVMs JIT-compiling at once on a small machine took
        20-40 s to start the cluster, 16-20 s with C1 only (measured on 2 busy cores); a local cluster never
        needs C2's peak throughput."""
        cmd = super()._java(*args, heap=heap)
        return cmd[:1] + ["-XX:TieredStopAtLevel=1"] + cmd[1:] if heap else cmd

    def format_storage(self, props: Path, cluster_id: str | None = None) -> None:
        """Every node formats with the same cluster id and the static voter set (no ``--standalone``)."""
        if self.check_formatted():
            return
        proc = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id or self.cluster_id}",
                "-c",
                str(props),
                "--ignore-formatted",
                *format_args(self.settings),
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise KafkaLaunchError(
                f"kafka storage format of node {self.node_id} failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}"
            )
        self.security_marker.write_text(self.settings.kafka_security + "\n")


class LocalCluster:
    """N ``ClusterNode`` s started together, stopped together, each restartable on its own."""

    def __init__(self, settings: Settings, brokers: int | None = None, ports: list[tuple[int, int]] | None = None):
        """``brokers``: None for the recorded cluster (or 3); ``ports``: (broker, controller) per node."""
        self.settings = settings
        self.dir = settings.data_dir.resolve() / "kafka-cluster"
        self.record = self.dir / "cluster.json"
        recorded = self._recorded()
        if recorded and ports is None:
            ports = [tuple(n) for n in recorded["ports"]]
            if brokers is not None and brokers != len(ports):
                raise KafkaLaunchError(
                    f"a cluster of {len(ports)} nodes lives in {self.dir}; stop it and remove that "
                    f"directory (its data goes with it) to run {brokers}"
                )
        brokers = len(ports) if ports else (brokers or 3)
        if brokers < 1:
            raise KafkaLaunchError(f"--brokers must be at least 1, got {brokers}")
        self.ports = ports or default_ports(settings, brokers)
        if len(self.ports) != brokers:
            raise KafkaLaunchError(f"{brokers} brokers need {brokers} addresses, got {len(self.ports)}")
        self.cluster_id = (recorded or {}).get("cluster_id") or base64.urlsafe_b64encode(
            uuid.uuid4().bytes
        ).decode().rstrip("=")
        voters = ",".join(f"{i + 1}@{HOST}:{c}" for i, (_, c) in enumerate(self.ports))
        replicas = min(3, brokers)
        self.nodes = [
            ClusterNode(
                settings.model_copy(
                    update={
                        "kafka_bootstrap": f"{HOST}:{p}",
                        "kafka_controller_port": c,
                        "kafka_heap": settings.kafka_cluster_heap,
                    }
                ),
                node_id=i + 1,
                voters=voters,
                replicas=replicas,
                cluster_id=self.cluster_id,
            )
            for i, (p, c) in enumerate(self.ports)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{p}" for p, _ in self.ports)

    def client_settings(self) -> Settings:
        """Settings for clients of this cluster: its bootstrap, and the configured replication, or min(3, N)
        replicas with one allowed down when the settings still say 1."""
        s = self.settings
        rf = s.replication_factor if s.replication_factor > 1 else min(3, len(self.nodes))
        isr = s.min_insync_replicas if s.min_insync_replicas > 1 else max(1, rf - 1)
        return s.model_copy(
            update={"kafka_bootstrap": self.bootstrap, "replication_factor": rf, "min_insync_replicas": isr}
        )

    def _recorded(self) -> dict | None:
        try:
            return json.loads(self.record.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id - 1]

    def start(self, wait_s: float = 120.0, quiet: bool = False, die_with_parent: bool = False) -> str:
        """Launch every node that is not running, then wait for all of them (a node answers only once a
        quorum of controllers runs, so they cannot be started one after the other)."""
        self.nodes[0].provision(quiet=quiet)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.record.write_text(
            json.dumps({"cluster_id": self.cluster_id, "ports": self.ports, "bootstrap": self.bootstrap})
        )
        todo = [n for n in self.nodes if not n.pid()]
        for node in todo:
            if node.answering():
                raise KafkaLaunchError(f"port {node.host_port[1]} of node {node.node_id} is taken by another process")
        # The storage formats (a JVM tool each, 1.5-3 s on 2 busy cores) run side by side; launch skips a formatted one.
        with ThreadPoolExecutor(max(1, len(todo))) as pool:
            list(pool.map(LocalKafka.prepare, todo))
        launched = [(node, node.launch(die_with_parent)) for node in todo]
        deadline = time.monotonic() + wait_s
        try:
            for node, proc in launched:
                node.wait_ready(proc, max(1.0, deadline - time.monotonic()))
        except KafkaLaunchError:
            self.stop(wait_s=5)
            raise
        return f"kafka {self.settings.kafka_version} cluster of {len(self.nodes)} running on {self.bootstrap}"

    def restart_node(self, node_id: int, wait_s: float = 90.0, die_with_parent: bool = False) -> str:
        """Start one node again on its own data directory (the others run)."""
        node = self.node(node_id)
        return node.wait_ready(node.launch(die_with_parent), wait_s)

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node (a crash: no controlled shutdown)."""
        pid = self.node(node_id).pid()
        if pid:
            os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while self.node(node_id).pid() and time.monotonic() < deadline:
                time.sleep(0.05)

    def stop(self, wait_s: float = 30.0) -> str:
        """SIGTERM every node at once (a controlled shutdown each), SIGKILL what still runs after ``wait_s``."""
        pids = [n.pid() for n in self.nodes]
        for pid in filter(None, pids):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(n.pid() for n in self.nodes):
            time.sleep(0.2)
        for n in self.nodes:
            if n.pid():
                os.killpg(n.pid(), signal.SIGKILL)
            n.pid_file.unlink(missing_ok=True)
        stopped = [str(p) for p in pids if p]
        return f"kafka cluster stopped (pids {', '.join(stopped)})" if stopped else "kafka cluster not running"

    def status(self) -> str:
        return "\n".join(f"node {n.node_id}: {n.status()}" for n in self.nodes)

    def leaders(self, topics: list[str]) -> dict[int, int]:
        """Node id -> how many partitions of ``topics`` it leads (-1: partitions with no leader)."""
        from confluent_kafka.admin import AdminClient

        from livemetrics.kafka_config import admin_config, as_admin

        md = AdminClient(admin_config(as_admin(self.client_settings()))).list_topics(timeout=10)
        count: dict[int, int] = {}
        for t in topics:
            for p in md.topics[t].partitions.values():
                count[p.leader] = count.get(p.leader, 0) + 1
        return count


def default_ports(s: Settings, brokers: int) -> list[tuple[int, int]]:
    """(broker port, controller port) per node: the addresses of ``kafka_bootstrap`` when it lists one per
    node, else the first one's port + 2i; controllers on ``kafka_controller_port`` + 2i."""
    addrs = [a.rpartition(":")[2] for a in s.kafka_bootstrap.split(",")]
    if len(addrs) == brokers:
        ports = [int(a) for a in addrs]
    else:
        ports = [int(addrs[0]) + 2 * i for i in range(brokers)]
    return [(p, s.kafka_controller_port + 2 * i) for i, p in enumerate(ports)]


def cluster_recorded(s: Settings) -> bool:
    return (s.data_dir.resolve() / "kafka-cluster" / "cluster.json").exists()
