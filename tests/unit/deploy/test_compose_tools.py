"""deploy/compose.yaml read by Debian's docker-compose (`config -q`: parses and interpolates without a
daemon) and the Kafka settings a read of it found wrong: the KRaft cluster id and the log directory."""

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
REQUIRED = (
    "LIVEMETRICS_ADMIN_TOKEN",
    "LIVEMETRICS_IP_HASH_SECRET",
    "LIVEMETRICS_KEY_ENCRYPTION_KEY",
    "CLICKHOUSE_APP_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "LIVEMETRICS_KAFKA_ADMIN_PASSWORD",
    "LIVEMETRICS_KAFKA_GATEWAY_PASSWORD",
    "LIVEMETRICS_KAFKA_WORKER_PASSWORD",
    "LIVEMETRICS_KAFKA_API_PASSWORD",
)


def compose_config(env: dict, *args: str) -> subprocess.CompletedProcess:
    """``docker-compose config`` with ``args`` (``-q``: only check) and only ``env`` set."""
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing: `make test` installs Debian's docker-compose (make ops-tools)"
    return subprocess.run(
        [tool, "-f", "compose.yaml", "config", *args],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_docker_compose_accepts_the_file_when_every_secret_is_given():
    out = compose_config({v: "x" * 40 for v in REQUIRED}, "-q")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("missing", REQUIRED)
def test_docker_compose_refuses_to_start_without_a_secret_and_names_it(missing):
    out = compose_config({v: "x" * 40 for v in REQUIRED if v != missing}, "-q")
    assert out.returncode != 0 and missing in out.stderr


def test_docker_compose_gives_the_workers_three_times_the_cpu_weight_of_the_other_services():
    """The worker's priority in containers (compose ``cpu_shares``, docs/architecture.md): as read by
    docker-compose itself (the anchors merged), each worker 3072 and every other service the default."""
    out = compose_config({v: "x" * 40 for v in REQUIRED})
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    workers = {name for name, svc in services.items() if svc.get("command") == ["worker"]}
    assert workers == {"worker-1", "worker-2"}
    shares = {name: svc.get("cpu_shares") for name, svc in services.items()}
    assert {name: shares[name] for name in workers} == {"worker-1": 3072, "worker-2": 3072}
    assert all(shares[name] is None for name in shares.keys() - workers), shares


def kafka_services() -> dict:
    text = re.sub(r"\$\{([A-Z_]+):[-?][^}]*\}", lambda m: "x", (DEPLOY / "compose.yaml").read_text())
    services = yaml.safe_load(text)["services"]
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")}


def test_the_kraft_cluster_id_is_a_base64url_uuid():
    raw = (DEPLOY / "compose.yaml").read_text()
    default = re.search(r"CLUSTER_ID: \$\{KAFKA_CLUSTER_ID:-([A-Za-z0-9_-]+)\}", raw).group(1)
    assert len(default) == 22 and len(base64.urlsafe_b64decode(default + "==")) == 16


def test_each_broker_keeps_its_log_on_its_volume():
    for name, svc in kafka_services().items():
        (mount,) = [v for v in svc["volumes"] if not v.startswith("./")]  # the other: deploy/kafka/format-scram.sh
        assert mount.split(":")[1] == svc["environment"]["KAFKA_LOG_DIRS"], name
