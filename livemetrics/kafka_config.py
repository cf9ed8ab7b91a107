"""The one place where client configuration for Kafka is built, for every library we use."""

from __future__ import annotations

from typing import Any

from livemetrics.kafka_logs import client_logger
from livemetrics.settings import Settings

SCRAM = "SCRAM-SHA-512"
ROLES = ("admin", "gateway", "worker", "api")  # the Kafka principals of secure mode, one per kind of process
# Characters a password may hold: it is written into the broker's JAAS config and `kafka-storage format
# --add-scram` arguments, where quotes, commas and brackets would break the syntax.
PASSWORD_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
MIN_PASSWORD_LENGTH = 16


def role_password(s: Settings, role: str) -> str:
    """The SCRAM password of ``role`` (secure mode), or a ValueError naming the variable to set."""
    var = f"LIVEMETRICS_KAFKA_{role.upper()}_PASSWORD"
    password = getattr(s, f"kafka_{role}_password").get_secret_value()
    if not password:
        raise ValueError(
            f"{var} is not set: LIVEMETRICS_KAFKA_SECURITY=sasl needs the password of the Kafka "
            f"principal '{role}' (e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    if len(password) < MIN_PASSWORD_LENGTH or not set(password) <= PASSWORD_ALPHABET:
        raise ValueError(
            f"{var} must be at least {MIN_PASSWORD_LENGTH} characters of letters, digits and -_.~ "
            f"(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    return password


def as_admin(s: Settings) -> Settings:
    """The same settings logged in as the admin principal (the launcher, topics, ACLs, `sellers`)."""
    return s if s.kafka_role == "admin" else s.model_copy(update={"kafka_role": "admin"})


def _security(s: Settings) -> dict[str, Any]:
    if s.kafka_security == "sasl":
        return {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": SCRAM,
            "sasl.username": s.kafka_role,
            "sasl.password": role_password(s, s.kafka_role),
        }
    conf: dict[str, Any] = {"security.protocol": s.kafka_security_protocol}
    if s.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = s.kafka_sasl_mechanism
        conf["sasl.username"] = s.kafka_sasl_username or ""
        conf["sasl.password"] = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
    return conf


# A broker back from an outage is found within about a second: librdkafka's backoff otherwise grows to
# 10 s between attempts at a broker it knows (measured: first delivery 0.9 s after the broker answered).
RECONNECT = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000}


def base_config(s: Settings) -> dict[str, Any]:
    """What every producer and consumer shares. Their log lines go to ``kafka_logs.client_logger()``
    (served by the client's ``poll()``), each kind at most once a minute: librdkafka alone prints a
    failed connection every ~50 ms per client while the broker is away."""
    return {"bootstrap.servers": s.kafka_bootstrap, **_security(s), **RECONNECT, "logger": client_logger()}


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


def record_producer_config(s: Settings, **overrides: Any) -> dict[str, Any]:
    """A short-lived producer of a few records of a compacted topic (keys: ``compacted.publish_all``): acks=all,
    not idempotent. A new idempotent producer waits 0.5-1 s for its producer id (librdkafka's timer), which was
    most of `sellers add`'s and a test's key setup; one request in flight keeps the records in order across
    retries, and a record written twice by a retry is the same record of its key, applied again."""
    return producer_config(s, **{"enable.idempotence": False, "max.in.flight.requests.per.connection": 1, **overrides})


def changelog_producer_config(s: Settings, **overrides: Any) -> dict[str, Any]:
    """The stream worker's table-changelog producer (streams/changelog.py): durable like
    ``producer_config``, with room for a large batch of rows in flight. It lingers 50 ms: nothing waits
    for a row's delivery but the offset commits and a revocation, while at 5 ms each batch's partitions went
    out as separate requests (~110 produce requests/s at 5,000 events/s: docs/architecture.md, Broker CPU).
    Not longer: the worker's drain commits inline every ``broker_commit_every`` messages (streams/fastpath.py),
    and a commit waits for the rows produced so far, so the live numbers wait that much every ~2 s at
    5,000 events/s (200 ms: 5k p99 +50-100 ms, the fifth look). A full queue (``worker_changelog_queue_rows``)
    makes the sessions agent wait for room without blocking its event loop."""
    conf = producer_config(
        s,
        **{
            "linger.ms": 50,
            "queue.buffering.max.messages": s.worker_changelog_queue_rows,
            "queue.buffering.max.kbytes": 1_048_576,
            "batch.size": 1_000_000,
        },
    )
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


def reader_config(s: Settings, **overrides: Any) -> dict[str, Any]:
    """A consumer that assigns its partitions itself (no group, nothing committed) and reads to each
    partition's end (``enable.partition.eof``): the compacted topics' followers, the gateway's ip-salts
    reader, the API's live feed. A position past the log's end only comes from a topic deleted and created
    again (unclean leader elections are off: livemetrics/topics.py): its new log is read from its start
    (librdkafka logs "offset reset ... to offset BEGINNING"); with librdkafka's default, the end, what was
    written to the new topic before the reset was never read by the process until a restart."""
    conf = {
        **base_config(s),
        "group.id": "unused",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    conf.update(overrides)
    return conf


def bulk_consumer_config(s: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A group consumer that reads in bulk and no one waits on (the ClickHouse sink). With librdkafka's
    defaults (fetch.min.bytes 1) its fetcher asks again as soon as an answer is in, so under a steady
    trickle it sent ~50 fetch requests/s at 5,000 events/s, most of the broker's fetches (docs/architecture.md,
    "Broker CPU"). Here the broker holds each fetch until 256 KB are there or 200 ms passed: a few fetches
    a second, at most 200 ms later; big fetches, as inserting wants them. Its topics' metadata is refreshed
    every 30 s (librdkafka's default: 5 minutes): partitions added to a topic reach the group (a rebalance)
    within that, one small metadata request each time."""
    conf = consumer_config(
        s,
        group_id,
        **{
            "topic.metadata.refresh.interval.ms": 30_000,
            "fetch.min.bytes": 256 << 10,
            "fetch.wait.max.ms": 200,
            "fetch.max.bytes": 64 << 20,
            "max.partition.fetch.bytes": 16 << 20,
        },
    )
    conf.update(overrides)
    return conf


def admin_config(s: Settings) -> dict[str, Any]:
    """An admin client's: its log lines stay on stderr, as nothing polls an admin client to serve them
    (they would pile up in its queue instead); admin clients live for one command or one check."""
    return {"bootstrap.servers": s.kafka_bootstrap, **_security(s), **RECONNECT}


def faust_broker_url(s: Settings) -> str:
    return ";".join(f"kafka://{h}" for h in s.kafka_bootstrap.split(","))


def faust_broker_credentials(s: Settings) -> Any:
    """The worker's Faust (aiokafka) login in secure mode, the same principal as ``base_config``; None
    otherwise (aiokafka does not read librdkafka's config)."""
    if s.kafka_security != "sasl":
        return None
    import faust  # only the worker has Faust loaded; the gateway and API never import it

    return faust.SASLCredentials(username=s.kafka_role, password=role_password(s, s.kafka_role), mechanism=SCRAM)
