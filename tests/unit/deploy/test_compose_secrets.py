"""deploy/ ships no working secret (docs/security.md): the env file sets none, and compose requires each
from the environment (``${VAR:?...}``). No compose binary runs here (no Docker engine), so its
interpolation rule for these forms is applied by ``interpolate`` below."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from livemetrics.secrets_check import SECRET_SETTINGS
from operations.secrets_init import VARIABLES

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}")


class Missing(Exception):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` (empty counts as unset with ':')."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == "?":
            raise Missing(f"{name}: {arg}")
        return arg if op == "-" else ""

    return _VAR.sub(one, value)


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_env_file_sets_no_secret_and_no_placeholder():
    text = (DEPLOY / "livemetrics.env").read_text()
    assigned = {
        line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#")
    }
    assert not assigned & set(VARIABLES)
    assert "change-me" not in text.lower()


def test_every_livemetrics_service_requires_each_secret_without_a_default(compose):
    for name, svc in compose["services"].items():
        if svc.get("image") != "livemetrics:latest" or svc["command"][0] == "kafka":
            continue
        env = svc.get("environment") or {}
        for setting in SECRET_SETTINGS:
            var = f"LIVEMETRICS_{setting.upper()}"
            assert re.fullmatch(rf"\$\{{{var}:\?[^}}]*livemetrics secrets init[^}}]*\}}", env.get(var, "")), (name, var)
        assert "${CLICKHOUSE_APP_PASSWORD:?" in env["LIVEMETRICS_CLICKHOUSE_DSN"], name


def test_compose_without_the_secrets_stops_and_says_how_to_make_them(compose):
    found = []
    for value in _strings(compose):
        try:
            interpolate(value, {})
        except Missing as exc:
            found.append(str(exc))
    for var in VARIABLES:
        assert any(f.startswith(f"{var}: set it with livemetrics secrets init") for f in found), var
    assert not any(":-" in v and "$" in v for v in _strings(compose) if any(x in v for x in VARIABLES))


def test_compose_with_the_secrets_gives_each_process_the_values(compose):
    env = {var: f"value-of-{var}" for var in VARIABLES}
    api = {k: interpolate(v, env) for k, v in compose["services"]["api"]["environment"].items()}
    assert api["LIVEMETRICS_ADMIN_TOKEN"] == "value-of-LIVEMETRICS_ADMIN_TOKEN"
    assert (
        api["LIVEMETRICS_CLICKHOUSE_DSN"] == "http://livemetrics_app:value-of-CLICKHOUSE_APP_PASSWORD@clickhouse:8123"
    )
    ch = compose["services"]["clickhouse"]["environment"]
    assert interpolate(ch["CLICKHOUSE_PASSWORD"], env) == "value-of-CLICKHOUSE_APP_PASSWORD"
