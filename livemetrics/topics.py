"""Explicit topic creation (the broker never auto-creates): the topics of docs/architecture.md (Topics) and Faust's changelogs."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from livemetrics.kafka_acls import apply_acls
from livemetrics.kafka_config import admin_config
from livemetrics.settings import (
    ALL_TOPICS,
    COMPACTED_TOPICS,
    RAW_TOPICS,
    TABLE_NAMES,
    WINDOWED_TABLE_EXPIRES_S,
    Settings,
)

HOUR_MS = 3_600_000


def topic_specs(s: Settings) -> list[NewTopic]:
    """Every topic with its partitions and retention; PII-bearing topics have bounded retention. Each has
    ``replication_factor`` replicas; a replicated one also its ``min.insync.replicas`` and no unclean
    leader election (a replica that missed acknowledged events never becomes leader)."""
    if s.min_insync_replicas > s.replication_factor:
        raise ValueError(
            f"min_insync_replicas ({s.min_insync_replicas}) is more than replication_factor "
            f"({s.replication_factor}): no event could ever be acknowledged"
        )
    specs = []
    for name in ALL_TOPICS:
        conf: dict[str, str] = {}
        partitions = s.partitions
        if name == "ip-salts":
            conf, partitions = ip_salts_config(), 1  # a few records; the earliest of a day wins
        elif name in COMPACTED_TOPICS:
            conf["cleanup.policy"] = "compact"
            if name == "seller-keys":
                partitions = 1  # tiny, read whole by every gateway and API replica
        elif name in RAW_TOPICS or name in ("dead-letter", "payment-alerts"):
            hours = (
                s.pii_retention_hours
                if name in ("payment-events", "checkout-events", "payment-alerts", "dead-letter")
                else s.raw_retention_hours
            )
            conf["retention.ms"] = str(hours * HOUR_MS)
            conf["segment.ms"] = str(HOUR_MS)  # see below
        else:  # internal streams traffic
            conf["retention.ms"] = str(6 * HOUR_MS)
            # Kafka deletes whole segments, once their newest record is past the retention, and rolls a segment
            # after segment.ms (7 days by default): a quiet topic kept customers' data up to ~8 days against
            # a 24-h retention, and raw events longer than the sink's dedup window. Hourly segments: a record
            # goes at most about an hour (and the broker's 5-min check) after its retention.
            conf["segment.ms"] = str(HOUR_MS)
        specs.append(
            NewTopic(
                s.topic(name),
                num_partitions=partitions,
                replication_factor=s.replication_factor,
                config={**conf, **replication_config(s)},
            )
        )
    # Faust names its own topics after the app id (tests make the app id unique instead of a prefix).
    for table in TABLE_NAMES:
        specs.append(
            NewTopic(
                f"{s.app_id}-{table}-changelog",
                num_partitions=s.partitions,
                replication_factor=s.replication_factor,
                config={**changelog_config(table), **replication_config(s)},
            )
        )
    specs.append(
        NewTopic(
            f"{s.app_id}-__assignor-__leader",
            num_partitions=1,
            replication_factor=s.replication_factor,
            config=replication_config(s),
        )
    )
    return specs


def replication_config(s: Settings) -> dict[str, str]:
    """Topic configs for replicated topics; none for a single broker (its defaults are these anyway)."""
    if s.replication_factor == 1:
        return {}
    return {"min.insync.replicas": str(s.min_insync_replicas), "unclean.leader.election.enable": "false"}


def ip_salts_config(period_ms: int = HOUR_MS) -> dict[str, str]:
    """The salts' topic lets the log cleaner destroy a salt soon after its tombstone (producers/gateway/
    ip_salts.py): compaction only touches rolled segments, so segments roll every period (an hour); a
    segment with a tombstone is compacted within the period whatever its dirty ratio; the tombstone itself
    goes a period later. (A test runs the same settings with a period of half a second.)"""
    return {
        "cleanup.policy": "compact",
        "segment.ms": str(period_ms),
        "min.compaction.lag.ms": "0",
        "max.compaction.lag.ms": str(period_ms),
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": str(period_ms),
    }


def changelog_config(table: str) -> dict[str, str]:
    """A table's changelog is compacted; a windowed table's also drops windows past their expiry, as the
    topic Faust would declare for it (``compact,delete``, retention = expires). Segments roll hourly:
    retention and compaction only ever remove rolled segments, so the topic keeps about 2 hours of windows."""
    expires_s = WINDOWED_TABLE_EXPIRES_S.get(table)
    if expires_s is None:
        return {"cleanup.policy": "compact"}
    return {"cleanup.policy": "compact,delete", "retention.ms": str(expires_s * 1000), "segment.ms": str(HOUR_MS)}


# A cluster that has just started can drop the connection a request went out on (librdkafka replaces its
# bootstrap connections once it knows the brokers: "_DESTROY_BROKER"), or not have a controller yet.
_TRANSIENT = {
    KafkaError._DESTROY_BROKER,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.NOT_CONTROLLER,
    KafkaError.REQUEST_TIMED_OUT,
}


def transient(exc: BaseException) -> bool:
    """A failure that asking again later may cure (no broker answering, no controller yet)."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and err.code() in _TRANSIENT


def create_topics(s: Settings, timeout: float = 30.0) -> list[str]:
    """Create missing topics; return the names created. Existing topics are left as they are. A transient
    failure is tried again (for what is still missing) until ``timeout``. In secure mode the topics' ACLs
    are (re)applied too (kafka_acls.py); only the admin principal does either (`livemetrics kafka topics`,
    compose's topics job): another role (the worker at its start) leaves them to it."""
    if s.kafka_security == "sasl" and s.kafka_role != "admin":
        return []
    deadline = time.monotonic() + timeout
    created: list[str] = []
    while True:
        try:
            created += _create_missing(s, timeout)
            apply_acls(s, timeout)
            return created
        except KafkaException as exc:
            if exc.args[0].code() not in _TRANSIENT or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _create_missing(s: Settings, timeout: float) -> list[str]:
    admin = AdminClient(admin_config(s))
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [t for t in topic_specs(s) if t.topic not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(wanted, operation_timeout=timeout, request_timeout=timeout)
    created = []
    for name, fut in futures.items():
        try:
            fut.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created
