"""Placeholder, default and short secrets are refused outside dev mode (docs/security.md)."""

from __future__ import annotations

import secrets
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemetrics.secrets_check import MIN_SECRET_CHARS, SECRET_SETTINGS, InsecureSecrets, check_secrets, secret_problems
from livemetrics.settings import Settings


def good() -> dict[str, str]:
    return {name: secrets.token_urlsafe(32) for name in SECRET_SETTINGS}


def test_the_built_in_defaults_are_all_refused_and_each_is_named():
    with pytest.raises(InsecureSecrets) as exc:
        check_secrets(Settings())
    text = str(exc.value)
    for name in SECRET_SETTINGS:
        assert f"LIVEMETRICS_{name.upper()}" in text
    assert "livemetrics secrets init" in text


@pytest.mark.parametrize(
    "value, why",
    [
        ("change-me-admin-token-but-now-much-longer-than-32", "placeholder"),
        ("CHANGE-ME-ip-hash-secret-0123456789abcdefghijklmnop", "placeholder"),
        ("dev-only-key-encryption-key-0123456789abcdefghijklm", "placeholder"),
        ("", "not set"),
        ("x" * (MIN_SECRET_CHARS - 1), "shorter than 32"),
    ],
)
@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_one_bad_secret_is_refused_by_name(name, value, why):
    s = Settings(**{**good(), name: value})
    assert list(secret_problems(s)) == [name]
    with pytest.raises(InsecureSecrets, match=why) as exc:
        check_secrets(s)
    others = [n for n in SECRET_SETTINGS if n != name]
    assert all(f"LIVEMETRICS_{n.upper()}" not in str(exc.value) for n in others)


def test_dev_mode_starts_with_the_defaults():
    check_secrets(Settings(dev_mode=True))  # no exception


def test_dev_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIVEMETRICS_DEV_MODE", "true")
    assert Settings().dev_mode is True
    monkeypatch.delenv("LIVEMETRICS_DEV_MODE")
    assert Settings().dev_mode is False  # off unless said


@given(
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=MIN_SECRET_CHARS, max_size=80).filter(
        lambda v: not any(m in v.lower() for m in ("change-me", "changeme", "dev-only", "placeholder"))
    )
)
def test_any_long_secret_without_a_placeholder_mark_is_accepted(value):
    check_secrets(Settings(**{name: value for name in SECRET_SETTINGS}))
