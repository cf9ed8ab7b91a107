"""``livemetrics kafka start|stop|status|topics|provision`` for a local cluster (``--brokers N``, or the one
recorded in the data directory): the CLI's dispatch for ``kafka_cluster.LocalCluster``."""

from __future__ import annotations

import sys

from livemetrics.settings import Settings
from operations.kafka_cluster import LocalCluster
from operations.kafka_local import KafkaLaunchError


def cluster_command(s: Settings, action: str, brokers: int) -> int:
    """``livemetrics kafka start|stop|status|topics|provision`` for a cluster (the CLI's dispatch)."""
    from livemetrics.topics import create_topics

    try:
        cluster = LocalCluster(s, brokers if action == "start" else None)
        clients = cluster.client_settings()
        if action == "start":
            print(cluster.start())
            created = create_topics(clients)
            print(
                f"topics: {len(created)} created" if created else "topics: all present",
                f"({clients.replication_factor} replicas, min.insync.replicas={clients.min_insync_replicas})",
            )
            print(
                "clients of this cluster need:\n"
                f"  export LIVEMETRICS_KAFKA_BOOTSTRAP={clients.kafka_bootstrap}\n"
                f"  export LIVEMETRICS_REPLICATION_FACTOR={clients.replication_factor}\n"
                f"  export LIVEMETRICS_MIN_INSYNC_REPLICAS={clients.min_insync_replicas}"
            )
        elif action == "stop":
            print(cluster.stop())
        elif action == "topics":
            print("\n".join(create_topics(clients)) or "all topics present")
        elif action == "provision":
            print(f"kafka {s.kafka_version} jars in {cluster.nodes[0].provision()}")
        else:
            print(cluster.status())
    except (KafkaLaunchError, ValueError) as exc:
        print(f"livemetrics kafka: {exc}", file=sys.stderr)
        return 1
    return 0
