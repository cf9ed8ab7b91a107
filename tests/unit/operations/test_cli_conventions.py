"""What a user of any Python tool expects: ``python -m``, ``--version``, ``.env``, one clear line for a
bad setting."""

import subprocess
import sys
import tomllib
from pathlib import Path

from livemetrics import __version__
from livemetrics.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_python_m_livemetrics_prints_the_packaged_version():
    out = subprocess.run(
        [sys.executable, "-m", "livemetrics", "--version"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"livemetrics {__version__}"
    assert __version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_a_bad_setting_is_one_line_naming_the_variable_not_a_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LIVEMETRICS_PARTITIONS": "twelve", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "livemetrics", "kafka", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "livemetrics kafka: bad setting LIVEMETRICS_PARTITIONS: Input should be a valid integer, unable to parse "
        "string as an integer (given 'twelve')"
    ]


def test_a_dot_env_file_in_the_working_directory_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("LIVEMETRICS_API_PORT=9101\nLIVEMETRICS_GATEWAY_PORT=9100\nOTHER=1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIVEMETRICS_API_PORT", raising=False)
    monkeypatch.setenv("LIVEMETRICS_GATEWAY_PORT", "9200")
    s = Settings()
    assert (s.api_port, s.gateway_port) == (9101, 9200)


def test_secret_values_are_never_echoed_in_a_settings_error():
    from pydantic import ValidationError

    from livemetrics.settings import _explain

    try:
        Settings(admin_token=987654321, api_port="not-a-port")
        raise AssertionError("bad values were accepted")
    except ValidationError as exc:
        text = str(_explain(exc))
    assert "LIVEMETRICS_ADMIN_TOKEN" in text and "987654321" not in text
    assert "LIVEMETRICS_API_PORT" in text and "not-a-port" in text
