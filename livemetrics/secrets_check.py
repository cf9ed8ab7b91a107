"""Refuse to start with a secret anyone could know (docs/security.md, Secrets).

The three secrets that protect every seller (the admin token reads all of them, the key-encryption key
unseals server-key secrets stored in Kafka, the IP-hash secret keys visitors' IP hashes) have
development defaults so that ``livemetrics up`` works out of the box. A production process that kept
one of those, a placeholder from a template, or something short enough to guess would start silently
and be open; every process calls ``check_secrets`` first instead, and only dev mode lets it pass.
"""

from __future__ import annotations

from livemetrics.settings import Settings

SECRET_SETTINGS = ("admin_token", "ip_hash_secret", "key_encryption_key")
MIN_SECRET_CHARS = 32
# Parts of every default and template value this project ever shipped (settings.py, deploy/livemetrics.env).
PLACEHOLDER_MARKS = ("change-me", "changeme", "dev-only", "placeholder")


class InsecureSecrets(RuntimeError):
    """One or more secrets are placeholders, defaults or too short; the message names each."""


def secret_problem(name: str, value: str) -> str | None:
    """Why ``value`` is not a usable secret for the setting ``name``, or None when it is."""
    default = Settings.model_fields[name].default
    default_value = default.get_secret_value() if hasattr(default, "get_secret_value") else str(default or "")
    if not value:
        return "is not set"
    lowered = value.lower()
    if value == default_value or any(mark in lowered for mark in PLACEHOLDER_MARKS):
        return "is a placeholder or the built-in default"
    if len(value) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters ({len(value)})"
    return None


def secret_problems(settings: Settings) -> dict[str, str]:
    """Each bad secret setting and what is wrong with it (empty: all usable)."""
    out = {}
    for name in SECRET_SETTINGS:
        problem = secret_problem(name, getattr(settings, name).get_secret_value())
        if problem:
            out[name] = problem
    return out


def check_secrets(settings: Settings) -> None:
    """Raise ``InsecureSecrets`` naming every bad secret, unless ``dev_mode`` is on."""
    if settings.dev_mode:
        return
    problems = secret_problems(settings)
    if not problems:
        return
    lines = [f"  LIVEMETRICS_{name.upper()} {why}" for name, why in problems.items()]
    raise InsecureSecrets(
        "refusing to start: these secrets are not safe to use:\n"
        + "\n".join(lines)
        + "\nWrite fresh ones with `livemetrics secrets init` (an env file) or set them from your secret store; "
        "only on a development machine, LIVEMETRICS_DEV_MODE=true starts with them anyway."
    )
