"""Every long-running command refuses the built-in secrets outside dev mode, and ``livemetrics secrets
init`` writes fresh ones (docs/security.md). The commands run as real processes: before the check, each
of them would have started (and the timeout fails the test)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from livemetrics.secrets_check import SECRET_SETTINGS, check_secrets
from livemetrics.settings import Settings
from operations.command import livemetrics_argv
from operations.secrets_init import VARIABLES, SecretsExist, init_env_file
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMETRICS_")}
    # Nothing these commands could reach: a refusal must come before any connection is tried.
    env.update(
        LIVEMETRICS_DATA_DIR=str(tmp_path / "data"),
        LIVEMETRICS_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
        LIVEMETRICS_GATEWAY_PORT=str(free_port()),
        LIVEMETRICS_API_PORT=str(free_port()),
        LIVEMETRICS_WORKER_METRICS_PORT="0",
        LIVEMETRICS_SINK_OPS_PORT="0",
        **extra,
    )
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # Run from an empty directory: settings also read ./.env, and a developer's checkout may have one.
    cwd = Path(env["LIVEMETRICS_DATA_DIR"]).parent / "cwd"
    cwd.mkdir(exist_ok=True)
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    return subprocess.run(livemetrics_argv(*args), env=env, capture_output=True, text=True, timeout=30, cwd=cwd)


@pytest.mark.parametrize(
    "command",
    [
        ["gateway"],
        ["worker"],
        ["sink"],
        ["api"],
        ["migrate"],
        ["sellers", "add", "shop"],
        ["erase", "--email", "a@b.example"],
    ],
)
def test_each_process_refuses_the_built_in_secrets(tmp_path, command):
    r = _cli(_env(tmp_path), *command)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    for name in SECRET_SETTINGS:
        assert f"LIVEMETRICS_{name.upper()}" in r.stderr, r.stderr
    assert "livemetrics secrets init" in r.stderr
    assert not (tmp_path / "data").exists()  # refused before touching anything


def test_a_short_secret_is_refused_and_only_it_is_named(tmp_path):
    env = _env(
        tmp_path,
        LIVEMETRICS_ADMIN_TOKEN="short-token",
        LIVEMETRICS_IP_HASH_SECRET="a" * 40,
        LIVEMETRICS_KEY_ENCRYPTION_KEY="b" * 40,
    )
    r = _cli(env, "migrate")
    assert r.returncode == 2 and "LIVEMETRICS_ADMIN_TOKEN is shorter than 32 characters (11)" in r.stderr, r.stderr
    assert "LIVEMETRICS_IP_HASH_SECRET" not in r.stderr and "LIVEMETRICS_KEY_ENCRYPTION_KEY" not in r.stderr


def test_secrets_init_writes_fresh_secrets_the_processes_accept(tmp_path):
    path = tmp_path / "deploy" / ".env"
    r = _cli(_env(tmp_path), "secrets", "init", "--env-file", str(path))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert set(values) == set(VARIABLES)
    assert len(set(values.values())) == len(values) and all(len(v) >= 43 for v in values.values())
    check_secrets(Settings(**{n: values[f"LIVEMETRICS_{n.upper()}"] for n in SECRET_SETTINGS}))  # accepted
    again = _cli(_env(tmp_path), "secrets", "init", "--env-file", str(path))
    assert again.returncode == 1 and "already sets" in again.stderr and "--force" in again.stderr
    assert path.read_text() == "\n".join(f"{k}={v}" for k, v in values.items()) + "\n"  # untouched


def test_secrets_init_fills_empty_values_keeps_other_lines_and_force_replaces(tmp_path):
    path = tmp_path / "livemetrics.env"
    path.write_text("# settings\nLIVEMETRICS_PARTITIONS=12\nLIVEMETRICS_ADMIN_TOKEN=\n")
    path.chmod(0o644)
    assert init_env_file(path) == list(VARIABLES)
    lines = path.read_text().splitlines()
    assert lines[:2] == ["# settings", "LIVEMETRICS_PARTITIONS=12"] and lines[2].startswith("LIVEMETRICS_ADMIN_TOKEN=")
    assert len(lines) == 2 + len(VARIABLES) and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(SecretsExist):
        init_env_file(path)
    before = path.read_text()
    init_env_file(path, force=True)
    after = path.read_text().splitlines()
    assert after[:2] == lines[:2] and len(after) == len(lines)
    assert not set(after[2:]) & set(before.splitlines()[2:])  # every secret replaced
