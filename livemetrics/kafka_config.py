"""The one place where client configuration for Kafka is built, for every library we use."""

from __future__ import annotations

from typing import Any

from livemetrics.settings import Settings


def _security(s: Settings) -> dict[str, Any]:
    conf: dict[str, Any] = {"security.protocol": s.kafka_security_protocol}
    if s.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = s.kafka_sasl_mechanism
        conf["sasl.username"] = s.kafka_sasl_username or ""
        conf["sasl.password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
    return conf


def base_config(s: Settings) -> dict[str, Any]:
    return {"bootstrap.servers": s.kafka_bootstrap, **_security(s)}


def producer_config(s: Settings, **overrides: Any) -> dict[str, Any]:
    """Durable producer: idempotent, acks=all, delivery reported within ``delivery_timeout_ms``."""
    conf = {
        **base_config(s),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 500_000,
        "message.timeout.ms": s.delivery_timeout_ms,
    }
    conf.update(overrides)
    return conf


def changelog_producer_config(s: Settings, **overrides: Any) -> dict[str, Any]:
    """The stream worker's table-changelog producer (streams/changelog.py): durable like
    ``producer_config``, with room for a large batch of rows in flight."""
    conf = producer_config(s, **{"linger.ms": 5, "queue.buffering.max.messages": 1_000_000,
                                 "queue.buffering.max.kbytes": 1_048_576, "batch.size": 1_000_000})
    conf.update(overrides)
    return conf


def gateway_producer_config(s: Settings, **overrides: Any) -> dict[str, Any]:
    """The gateway's producer: durable like ``producer_config``, lingering 10 ms. Every request waits for
    its acknowledgements anyway, and fuller batches halve the broker's CPU per event (measured: it shares
    the gateway's cores on one machine); a lone request waits at most the linger more."""
    return producer_config(s, **{"linger.ms": 10, **overrides})


def consumer_config(s: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A group consumer. Its session timeout is ``consumer_session_timeout_s``: with librdkafka's 45 s, a
    member restarted after a SIGKILL (its predecessor never left the group) waited 45 s for its
    partitions, as the group's rebalance waits for every member it still counts (docs/operations.md)."""
    session_ms = int(s.consumer_session_timeout_s * 1000)
    conf = {
        **base_config(s),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(500, session_ms // 4),  # a few heartbeats per session, as Faust's worker
    }
    conf.update(overrides)
    return conf


def admin_config(s: Settings) -> dict[str, Any]:
    return base_config(s)


def faust_broker_url(s: Settings) -> str:
    return ";".join(f"kafka://{h}" for h in s.kafka_bootstrap.split(","))
