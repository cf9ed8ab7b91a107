"""Which Kafka principal may do what in secure mode (``LIVEMETRICS_KAFKA_SECURITY=sasl``).

Least privilege per kind of process (docs/security.md, Kafka). ``admin`` is a super user (topics, ACLs,
and the only writer of ``seller-keys``: whoever writes that topic can mint a key for any seller), so it
has no rules here. Everything not allowed below is refused by the broker's StandardAuthorizer.
"""

from __future__ import annotations

from typing import NamedTuple

from livemetrics.settings import RAW_TOPICS, Settings

# The key registry (livemetrics/keys.py) and the live feed (api/live_feed.py) read whole topics by
# assignment under this group id; librdkafka still looks the group's coordinator up, which needs DESCRIBE.
ASSIGN_ONLY_GROUP = "unused"


class Rule(NamedTuple):
    principal: str  # a role: gateway | worker | api
    resource: str  # topic | group
    name: str
    prefixed: bool  # a name prefix (Faust's own topics are named after its app id)
    operation: str  # read | write | describe | describe_configs | create | all


def acl_rules(s: Settings) -> list[Rule]:
    """Every ALLOW rule of the deployment ``s`` (its topic prefix, Faust app id and sink group)."""
    t = s.topic
    raw = [t(n) for n in RAW_TOPICS]
    rules: list[Rule] = []

    def allow(principal: str, resource: str, names: list[str], *ops: str, prefixed: bool = False) -> None:
        rules.extend(Rule(principal, resource, n, prefixed, op) for n in names for op in ops)

    # gateway: writes the raw topics and dead letters, reads its key registry; nothing else.
    allow("gateway", "topic", raw + [t("dead-letter")], "write")
    allow("gateway", "topic", [t("seller-keys")], "read")
    allow("gateway", "topic", [t("ip-salts")], "read", "write")  # the day's shared salt (producers/gateway/ip_salts.py)
    allow("gateway", "group", [ASSIGN_ONLY_GROUP], "describe")
    # the worker group's committed offsets, for its lag (overload protection, producers/gateway/worker_lag.py)
    allow("gateway", "group", [s.app_id], "describe")
    # worker: reads the raw topics, writes what it derives, owns its tables' changelogs and its group.
    allow("worker", "topic", raw, "read")
    allow("worker", "topic", [t("session-ticks"), t("live-deltas")], "read", "write")
    allow("worker", "topic", [t("live-metrics"), t("payment-alerts"), t("dead-letter")], "write")
    allow("worker", "topic", [f"{s.app_id}-"], "all", prefixed=True)
    allow("worker", "group", [s.app_id], "read")
    # api (with its sink): reads keys, the live topics and the raw events it stores; its own groups.
    allow("api", "topic", [t("seller-keys"), t("live-metrics"), t("payment-alerts"), t("erasures"), *raw], "read")
    allow("api", "topic", [t("dead-letter")], "write")
    allow("api", "topic", [t("erasures")], "write")  # POST /v1/admin/erase tells every API replica (erase.py)
    # sellers' notification channels, written on a seller token's request; the notifier's group (api/notify/)
    allow("api", "topic", [t("seller-channels")], "read", "write")
    allow("api", "group", [s.notify_group], "read")
    allow("api", "group", [s.sink_group], "read", prefixed=True)
    allow("api", "group", [ASSIGN_ONLY_GROUP], "describe")
    # the sink's checks at an assignment (clickhouse/sink_logs.py): a raw topic's retention.ms and segment.ms
    # against the dedup window, and the raw topics' partition count against the worker's sessions changelog
    allow("api", "topic", raw, "describe_configs")
    allow("api", "topic", [f"{s.app_id}-sessions-changelog"], "describe")
    return rules


def acl_bindings(s: Settings) -> list:
    """``acl_rules`` as confluent-kafka ``AclBinding`` s (ALLOW, any host)."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return [
        AclBinding(
            ResourceType[r.resource.upper()],
            r.name,
            ResourcePatternType.PREFIXED if r.prefixed else ResourcePatternType.LITERAL,
            f"User:{r.principal}",
            "*",
            AclOperation[r.operation.upper()],
            AclPermissionType.ALLOW,
        )
        for r in acl_rules(s)
    ]


def apply_acls(s: Settings, timeout: float = 30.0) -> int:
    """Create every binding as the admin principal (creating an existing one is a no-op); return how many.
    Nothing to do in plaintext mode."""
    if s.kafka_security != "sasl":
        return 0
    from confluent_kafka.admin import AdminClient

    from livemetrics.kafka_config import admin_config, as_admin

    admin = AdminClient(admin_config(as_admin(s)))
    bindings = acl_bindings(s)
    for fut in admin.create_acls(bindings, request_timeout=timeout).values():
        fut.result()
    _wait_in_force(s, bindings, timeout)
    return len(bindings)


def _wait_in_force(s: Settings, bindings: list, timeout: float) -> None:
    """Wait until every broker lists the bindings. The controller commits them at once, but each broker
    applies them from the metadata log a moment later: on a 3-node cluster a gateway that wrote right
    after `kafka topics` was refused (TOPIC_AUTHORIZATION_FAILED) by a broker that had not yet."""
    import time

    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    from livemetrics.kafka_config import admin_config, as_admin

    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    wanted = {str(b) for b in bindings}
    deadline = time.monotonic() + timeout
    for address in s.kafka_bootstrap.split(","):  # a client of one address asks that broker
        broker = AdminClient(admin_config(as_admin(s).model_copy(update={"kafka_bootstrap": address})))
        while wanted - {str(b) for b in broker.describe_acls(everything, request_timeout=timeout).result()}:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the ACLs were created but broker {address} did not list them within {timeout:.0f}s"
                )
            time.sleep(0.1)
