"""The local broker's secure mode (``LIVEMETRICS_KAFKA_SECURITY=sasl``; docs/security.md, Kafka).

Clients log in with SASL/SCRAM-SHA-512 on the one client listener (SASL_PLAINTEXT: TLS is the network's
job, as for every other hop); the StandardAuthorizer refuses whatever no ACL allows (kafka_acls.py).
The broker talks to itself as the ``admin`` super user: SCRAM on the client/inter-broker listener, and
PLAIN on the controller listener (KRaft keeps SCRAM credentials in the metadata log, which a
controller must already have read before it could check them, so controllers cannot use SCRAM).
SCRAM users are created when the storage is formatted (``--add-scram``), before the broker first runs.
"""

from __future__ import annotations

from livemetrics.kafka_config import ROLES, SCRAM, role_password
from livemetrics.settings import Settings

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


def passwords(s: Settings) -> dict[str, str]:
    """Every principal's password (ValueError naming the first missing or unusable one)."""
    return {role: role_password(s, role) for role in ROLES}


def listener_lines(s: Settings, host: str, port: int, cport: int) -> list[str]:
    """The listener and security lines of a node's server.properties (broker on ``port``, controller on ``cport``)."""
    if s.kafka_security != "sasl":
        return [
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        ]
    admin = passwords(s)["admin"]
    return [
        f"listeners=SASL_PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners=SASL_PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        f"sasl.enabled.mechanisms={SCRAM}",
        f"sasl.mechanism.inter.broker.protocol={SCRAM}",
        f"listener.name.sasl_plaintext.{SCRAM.lower()}.sasl.jaas.config={_SCRAM_LOGIN} required "
        f'username="admin" password="{admin}";',
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={_PLAIN_LOGIN} required "
        f'username="admin" password="{admin}" user_admin="{admin}";',
        f"authorizer.class.name={AUTHORIZER}",
        "super.users=User:admin",
        "allow.everyone.if.no.acl.found=false",
    ]


def format_args(s: Settings) -> list[str]:
    """``kafka-storage format`` arguments that create every principal's SCRAM credential (none in plaintext)."""
    if s.kafka_security != "sasl":
        return []
    args: list[str] = []
    for role, password in passwords(s).items():
        args += ["--add-scram", f"{SCRAM}=[name={role},password={password}]"]
    return args
