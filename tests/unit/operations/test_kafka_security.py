"""Secure mode's pure parts: the client login per role, the broker's security lines and the ACL rules."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemetrics.kafka_acls import acl_bindings, acl_rules
from livemetrics.kafka_config import RECONNECT, ROLES, base_config, faust_broker_credentials, producer_config
from livemetrics.settings import RAW_TOPICS, Settings
from operations.kafka_local import KafkaLaunchError, LocalKafka
from operations.kafka_secure import format_args, listener_lines

PASSWORDS = {f"kafka_{r}_password": secrets.token_urlsafe(24) for r in ROLES}


def secure(**extra) -> Settings:
    return Settings(
        **{
            "kafka_security": "sasl",
            "topic_prefix": "p.",
            "app_id": "lm-x",
            "sink_group": "sink-x",
            **PASSWORDS,
            **extra,
        }
    )


@pytest.mark.parametrize("role", ROLES)
def test_each_role_logs_in_as_its_own_principal(role):
    conf = producer_config(secure(kafka_role=role))
    assert conf["security.protocol"] == "SASL_PLAINTEXT" and conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == role and conf["sasl.password"] == PASSWORDS[f"kafka_{role}_password"]
    creds = faust_broker_credentials(secure(kafka_role=role))
    assert (creds.username, creds.password, creds.mechanism.value) == (role, conf["sasl.password"], "SCRAM-SHA-512")


def test_plaintext_is_unchanged():
    s = Settings()
    shared = {"logger", *RECONNECT}  # the same in both modes (log lines, reconnect backoff)
    assert {k: v for k, v in base_config(s).items() if k not in shared} == {
        "bootstrap.servers": s.kafka_bootstrap,
        "security.protocol": "PLAINTEXT",
    }
    assert faust_broker_credentials(s) is None and format_args(s) == []
    assert "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" in listener_lines(s, "h", 1, 2)


@pytest.mark.parametrize(
    "password, why", [("", "is not set"), ("short", "at least 16"), ('with"quote-0123456789', "letters, digits")]
)
def test_a_missing_or_unusable_password_names_its_variable(password, why):
    s = secure(kafka_role="worker", kafka_worker_password=password)
    with pytest.raises(ValueError, match=f"LIVEMETRICS_KAFKA_WORKER_PASSWORD.*{why}|{why}.*"):
        base_config(s)
    with pytest.raises(ValueError, match="LIVEMETRICS_KAFKA_WORKER_PASSWORD"):
        format_args(s)  # the broker needs every principal's password


def test_the_launcher_names_a_missing_password_before_starting_anything(tmp_path):
    s = secure(data_dir=tmp_path, kafka_api_password="")
    with pytest.raises(KafkaLaunchError, match="LIVEMETRICS_KAFKA_API_PASSWORD is not set"):
        LocalKafka(s).launch()
    assert not (tmp_path / "kafka" / "data").exists() and LocalKafka(s).pid() is None


def test_the_broker_requires_sasl_and_an_authorizer():
    s = secure()
    lines = listener_lines(s, "127.0.0.1", 9092, 9093)
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in lines
    assert not any("PLAINTEXT:PLAINTEXT" in ln for ln in lines)  # no listener without a login
    assert "super.users=User:admin" in lines and "allow.everyone.if.no.acl.found=false" in lines
    assert any(ln.startswith("authorizer.class.name=") for ln in lines)
    args = format_args(s)
    assert [a for a in args if a != "--add-scram"] == [
        f"SCRAM-SHA-512=[name={r},password={PASSWORDS[f'kafka_{r}_password']}]" for r in ROLES
    ]


def allowed(s: Settings, principal: str, resource: str, name: str, operation: str) -> bool:
    """What Kafka decides for these rules (READ/WRITE imply DESCRIBE, ALL implies everything)."""
    implied = {"describe": {"describe", "read", "write", "all"}}.get(operation, {operation, "all"})
    return any(
        r.principal == principal
        and r.resource == resource
        and r.operation in implied
        and (name.startswith(r.name) if r.prefixed else name == r.name)
        for r in acl_rules(s)
    )


@given(prefix=st.sampled_from(["", "t1.", "lm-"]), app_id=st.sampled_from(["livemetrics", "lm-abc"]))
def test_least_privilege(prefix, app_id):
    s = secure(topic_prefix=prefix, app_id=app_id)
    t = s.topic
    for role in ("gateway", "worker", "api"):  # only the admin (a super user, no rules) writes keys
        assert not allowed(s, role, "topic", t("seller-keys"), "write")
    assert all(allowed(s, "gateway", "topic", t(n), "write") for n in RAW_TOPICS)
    assert allowed(s, "gateway", "topic", t("seller-keys"), "read")
    assert allowed(s, "gateway", "topic", t("ip-salts"), "write") and allowed(
        s, "gateway", "topic", t("ip-salts"), "read"
    )
    assert not any(allowed(s, r, "topic", t("ip-salts"), "describe") for r in ("api", "worker"))
    for name in ("payment-alerts", "live-metrics", "live-deltas", "session-ticks"):
        assert not allowed(s, "gateway", "topic", t(name), "describe"), name
    assert not allowed(s, "worker", "topic", t("seller-keys"), "describe")
    assert not any(allowed(s, r, "topic", t(n), "write") for r in ("api", "worker") for n in RAW_TOPICS)
    assert allowed(s, "worker", "topic", f"{app_id}-sessions-changelog", "create")
    assert allowed(s, "worker", "group", app_id, "read")
    for name in ("seller-keys", "live-metrics", "payment-alerts", *RAW_TOPICS):
        assert allowed(s, "api", "topic", t(name), "read"), name
    assert allowed(s, "api", "group", s.sink_group, "read") and not allowed(s, "gateway", "group", s.sink_group, "read")
    assert allowed(s, "api", "topic", t("erasures"), "write")  # the embedded API runs `livemetrics erase`
    assert allowed(s, "api", "topic", t("seller-channels"), "write") and allowed(
        s, "api", "group", s.notify_group, "read"
    )
    assert not any(
        allowed(s, r, "topic", t(n), "describe") for r in ("gateway", "worker") for n in ("seller-channels", "erasures")
    )
    # the sink's checks (clickhouse/sink_logs.py): retention of the raw topics, the worker's changelog's partitions
    assert all(allowed(s, "api", "topic", t(n), "describe_configs") for n in RAW_TOPICS)
    assert allowed(s, "api", "topic", f"{app_id}-sessions-changelog", "describe")
    assert not allowed(s, "api", "topic", f"{app_id}-gauges-changelog", "describe")
    assert not any(allowed(s, r, "topic", t(n), "describe_configs") for r in ("gateway", "worker") for n in RAW_TOPICS)
    assert len(acl_bindings(s)) == len(acl_rules(s))
