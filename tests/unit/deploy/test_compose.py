"""The production topology cannot run here (no Docker engine), so it is checked statically: the compose
file parses, every livemetrics service runs a command the CLI has, every setting it names exists and
parses, and the proxy, image and ClickHouse files agree with the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from livemetrics.contract import MAX_BODY_BYTES
from livemetrics.settings import Settings
from operations.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
ROOT = DEPLOY.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def app_services(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if s.get("image") == "livemetrics:latest"}


def test_compose_has_the_production_topology(compose):
    services = compose["services"]
    kafka = [n for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")]
    assert len(kafka) >= 3
    for n in kafka:
        env = services[n]["environment"]
        assert "controller" in env["KAFKA_PROCESS_ROLES"] and env["KAFKA_NODE_ID"]  # KRaft, no ZooKeeper
    assert str(services["clickhouse"]["image"]).startswith("clickhouse/clickhouse-server")
    apps = app_services(compose)
    roles = {s["command"][0] for s in apps.values()}
    assert {"gateway", "worker", "sink", "api", "migrate", "kafka"} <= roles
    for role in ("gateway", "api"):
        assert services[role]["deploy"]["replicas"] >= 2
    # workers are separate services, not replicas: each needs a RocksDB state volume of its own
    workers = [s for s in apps.values() if s["command"][0] == "worker"]
    assert len(workers) >= 2 and all("replicas" not in s.get("deploy", {}) for s in workers)
    volumes = [v.split(":")[0] for s in workers for v in s["volumes"]]
    assert len(volumes) == len(set(volumes)) == len(workers)
    assert "nginx" in services["proxy"]["image"]


def test_every_service_command_exists_in_the_cli(compose):
    parser = build_parser()
    for svc in app_services(compose).values():
        cmd = svc["command"] if isinstance(svc["command"], list) else shlex.split(svc["command"])
        parser.parse_args(cmd)  # SystemExit (a failed test) on an unknown command or option
    # the image's entry point is the CLI the project installs
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["livemetrics"]' in dockerfile
    assert 'livemetrics = "operations.cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_api_replicas_do_not_run_an_embedded_sink_next_to_the_sink_service(compose):
    assert compose["services"]["api"]["command"] == ["api", "--no-sink"]
    env = env_file(DEPLOY / "livemetrics.env")
    assert env["LIVEMETRICS_CLICKHOUSE_DSN"].startswith("http")  # a server: the sink is its own process


def test_every_setting_named_exists_and_parses(compose, monkeypatch):
    fields = set(Settings.model_fields)
    named: dict[str, str] = dict(env_file(DEPLOY / "livemetrics.env"))
    for svc in app_services(compose).values():
        named.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
        for f in svc.get("env_file", []) if isinstance(svc.get("env_file"), list) else [svc.get("env_file")]:
            if f:
                assert (DEPLOY / f).exists()
    text = "\n".join(
        p.read_text() for p in (DEPLOY / "compose.yaml", DEPLOY / "Dockerfile", ROOT / "docs" / "deploy.md")
    )
    mentioned = set(re.findall(r"LIVEMETRICS_[A-Z0-9_]+", text))
    for var in set(named) | mentioned:
        assert var.startswith("LIVEMETRICS_"), var
        assert var.removeprefix("LIVEMETRICS_").lower() in fields, f"{var} is not a field of Settings"
    for k, v in named.items():
        monkeypatch.setenv(k, v)
    s = Settings()  # every value parses (lists as JSON, numbers, DSN)
    assert s.replication_factor == 3 and s.partitions >= 3 and not s.clickhouse_embedded
    assert s.pii_retention_hours <= s.raw_retention_hours


def test_replication_fits_the_brokers(compose):
    env = env_file(DEPLOY / "livemetrics.env")
    brokers = env["LIVEMETRICS_KAFKA_BOOTSTRAP"].split(",")
    kafka = {n for n, s in compose["services"].items() if str(s.get("image", "")).startswith("apache/kafka")}
    assert {b.split(":")[0] for b in brokers} == kafka
    rf = int(env["LIVEMETRICS_REPLICATION_FACTOR"])
    min_isr = int(compose["services"]["kafka-1"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"])
    assert min_isr < rf <= len(kafka)  # acks=all survives one broker down


def test_depends_on_and_mounted_files_exist(compose):
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown {dep}"
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (DEPLOY / src).exists(), f"{name} mounts missing {src}"
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M):
        for part in src.split():
            assert (ROOT / part).exists(), f"Dockerfile copies missing {part}"


def test_proxy_routes_match_the_services():
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    env = env_file(DEPLOY / "livemetrics.env")
    assert conf.count("{") == conf.count("}")
    assert f"server gateway:{env['LIVEMETRICS_GATEWAY_PORT']}" in conf
    assert f"server api:{env['LIVEMETRICS_API_PORT']}" in conf
    assert f"client_max_body_size {MAX_BODY_BYTES // (1024 * 1024)}m" in conf
    assert "location = /v1/events" in conf and "proxy_pass http://gateway" in conf
    assert re.search(r"live/ws\$ \{[^}]*Upgrade", conf)  # WebSockets are upgraded
    from api.routes import dashboard, live

    ws_paths = [r.path for r in live.router.routes if "websocket" in type(r).__name__.lower()]
    assert ws_paths and all(re.match(r"^/v1/sellers/[^/]+/live/ws$", p.replace("{seller_id}", "x")) for p in ws_paths)
    assert "/dashboard" in {getattr(r, "path", "") for r in dashboard.router.routes}


def test_clickhouse_access_has_users_roles_and_row_policies():
    sql = (DEPLOY / "clickhouse" / "access.sql").read_text()
    assert "CREATE ROW POLICY" in sql and "CREATE ROLE" in sql and "livemetrics_app" in sql
    analyst_grant = re.search(r"GRANT SELECT\((.*?)\) ON livemetrics\.events", sql, re.S).group(1)
    from livemetrics.contract import COLUMN_NAMES, PII_COLUMNS

    cols = {c.strip() for c in analyst_grant.split(",")}
    assert cols <= set(COLUMN_NAMES) and not cols & set(PII_COLUMNS)
    users = (DEPLOY / "clickhouse" / "users.xml").read_text()
    import xml.etree.ElementTree as ET

    profiles = {p.tag for p in ET.fromstring(users).find("profiles")}
    assert {"livemetrics_app", "livemetrics_analyst", "livemetrics_bi_reader"} <= profiles
    for role in ("livemetrics_analyst", "livemetrics_bi_reader"):  # each login's role carries its limits
        assert f"CREATE ROLE IF NOT EXISTS {role} SETTINGS PROFILE '{role}'" in sql, role


def test_clickhouse_logins_read_system_tables_only_when_granted(compose):
    """Without it a BI login reads system.query_log: other sellers' queries and their literals."""
    import xml.etree.ElementTree as ET

    volumes = compose["services"]["clickhouse"]["volumes"]
    assert "./clickhouse/config.xml:/etc/clickhouse-server/config.d/livemetrics.xml:ro" in volumes
    acl = ET.fromstring((DEPLOY / "clickhouse" / "config.xml").read_text()).find("access_control_improvements")
    for flag in ("select_from_system_db_requires_grant", "select_from_information_schema_requires_grant"):
        assert acl.find(flag).text.strip() == "true", flag


def test_every_long_running_service_has_a_healthcheck_on_its_own_healthz(compose):
    """A stuck process is seen (`docker compose ps`): each service that runs on asks /healthz on the port it
    exposes (the worker's and the notifier's answer 503 while their event loop is stuck)."""
    for name, service in app_services(compose).items():
        if service.get("restart") == "no":
            continue  # one-shot jobs (topics, migrate)
        [port] = service["expose"]
        test = service.get("healthcheck", {}).get("test", [])
        assert f"http://localhost:{port}/healthz" in " ".join(test), name
