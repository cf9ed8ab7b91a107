"""``livemetrics secrets init``: fresh random secrets in an env file (docs/security.md, Secrets).

The file is ``KEY=value`` lines: what ``docker compose`` reads next to deploy/compose.yaml (``.env``)
and what a shell or a systemd ``EnvironmentFile=`` loads. Lines it does not own are kept as they are.
A secret already set there is never replaced without ``--force``: replacing the key-encryption key
makes every sealed server-key secret unreadable, and a new admin token locks out whoever holds the old one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from livemetrics.secrets_check import SECRET_SETTINGS

# The ClickHouse server's password for livemetrics_app and the Kafka principals' passwords (secure mode,
# deploy/compose.yaml; docs/security.md, Kafka), generated alongside.
EXTRA_VARIABLES = (
    "CLICKHOUSE_APP_PASSWORD",
    *(f"LIVEMETRICS_KAFKA_{r}_PASSWORD" for r in ("ADMIN", "GATEWAY", "WORKER", "API")),
)
VARIABLES = tuple(f"LIVEMETRICS_{name.upper()}" for name in SECRET_SETTINGS) + EXTRA_VARIABLES


class SecretsExist(RuntimeError):
    """The file already sets some of the secrets and ``--force`` was not given."""


def fresh_secret() -> str:
    """256 random bits, URL-safe (43 characters: no quoting needed in env files, DSNs or headers)."""
    return secrets.token_urlsafe(32)


def _parse(lines: list[str]) -> dict[str, int]:
    """Line index of each variable the file sets (the last one wins, as in a shell)."""
    at = {}
    for i, line in enumerate(lines):
        name, sep, _ = line.strip().removeprefix("export ").partition("=")
        if sep and not line.lstrip().startswith("#"):
            at[name.strip()] = i
    return at


def init_env_file(path: Path, force: bool = False) -> list[str]:
    """Write a fresh value for every secret the file does not set yet (every one with ``force``); return
    the names written. The file is created, or rewritten, with mode 0600 (only its owner reads it)."""
    lines = path.read_text().splitlines() if path.exists() else []
    at = _parse(lines)
    set_already = [v for v in VARIABLES if v in at and lines[at[v]].partition("=")[2].strip()]
    if set_already and not force:
        raise SecretsExist(
            f"{path} already sets {', '.join(set_already)}; nothing written (--force replaces "
            "them: sealed server-key secrets then need new keys, and the old admin token stops working)"
        )
    written = []
    for name in VARIABLES:
        if name in set_already and not force:
            continue
        line = f"{name}={fresh_secret()}"
        if name in at:
            lines[at[name]] = line
        else:
            lines.append(line)
        written.append(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT: set it
        out.write("\n".join(lines) + "\n")
    return written


def run(env_file: Path, force: bool) -> int:
    import sys

    try:
        written = init_env_file(env_file, force)
    except SecretsExist as exc:
        print(f"livemetrics secrets init: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} fresh secrets to {env_file} (mode 0600): {', '.join(written)}")
    print(
        "Load them into every livemetrics process's environment (compose reads deploy/.env by itself).", file=sys.stderr
    )
    return 0
