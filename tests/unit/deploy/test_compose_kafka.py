"""deploy/ runs Kafka with SASL/SCRAM and ACLs (docs/security.md; docs/security.md, Kafka): no listener
without a login, an authorizer, and each livemetrics service logs in as its own principal holding only
its own password."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from livemetrics.kafka_config import ROLES
from livemetrics.settings import Settings

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PASSWORD_VARS = {role: f"LIVEMETRICS_KAFKA_{role.upper()}_PASSWORD" for role in ROLES}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def test_every_broker_requires_a_login_and_authorizes(services):
    brokers = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")}
    assert len(brokers) == 3
    for name, svc in brokers.items():
        env = svc["environment"]
        protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(protocols.values()) == {"SASL_PLAINTEXT"}, name
        assert all(listener.split("://")[0] in protocols for listener in env["KAFKA_LISTENERS"].split(",")), name
        assert env["KAFKA_ADVERTISED_LISTENERS"].startswith("SASL_PLAINTEXT://"), name
        assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512", name
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer"), name
        assert env["KAFKA_SUPER_USERS"] == "User:admin" and env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        assert svc["command"][-1] == "/opt/livemetrics/format-scram.sh", name  # SCRAM users at format
        assert "./kafka/format-scram.sh:/opt/livemetrics/format-scram.sh:ro" in svc["volumes"], name
        assert "--command-config" in svc["healthcheck"]["test"][1], name  # the healthcheck logs in too
        for var in PASSWORD_VARS.values():
            assert env[var] == f"${{{var}:?set it with livemetrics secrets init}}", (name, var)


def test_each_service_logs_in_as_its_own_principal_with_only_its_password(services):
    expected = {
        "gateway": "gateway",
        "worker-1": "worker",
        "worker-2": "worker",
        "sink": "api",
        "notifier": "api",
        "api": "api",
        "topics": "admin",
    }
    for name, role in expected.items():
        env = services[name]["environment"]
        assert env["LIVEMETRICS_KAFKA_ROLE"] == role, name
        held = {r for r, var in PASSWORD_VARS.items() if var in env}
        assert held == {role}, (name, held)
        assert re.fullmatch(rf"\$\{{{PASSWORD_VARS[role]}:\?[^}}]+\}}", env[PASSWORD_VARS[role]]), name
        Settings(kafka_role=env["LIVEMETRICS_KAFKA_ROLE"])  # a role the settings accept
    for name, svc in services.items():  # nothing else of ours holds a Kafka password
        if svc.get("image") == "livemetrics:latest" and name not in expected:
            assert not set(PASSWORD_VARS.values()) & set(svc.get("environment") or {}), name


def test_the_env_file_turns_secure_mode_on():
    lines = (DEPLOY / "livemetrics.env").read_text().splitlines()
    assert "LIVEMETRICS_KAFKA_SECURITY=sasl" in lines


def test_the_format_script_parses_and_adds_every_principal():
    script = DEPLOY / "kafka" / "format-scram.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "for role in admin gateway worker api" in text and "--add-scram" in text
    assert "exec /etc/kafka/docker/run" in text  # then the image's own start
