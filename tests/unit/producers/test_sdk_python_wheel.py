"""The livemetrics-sdk wheel (producers/sdk-python) needs httpx and nothing else: its metadata says so, and
it imports and works in a fresh virtualenv that holds only httpx and httpx's own dependencies.

Building the wheel runs pip with build isolation (setuptools from the package index, as `make setup` does
for the project itself); the fresh virtualenv gets httpx's installed files linked from this one, so no
other download is needed."""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

SDK = Path(__file__).resolve().parents[3] / "producers" / "sdk-python"
# What `from producers.sdk import Client` used to pull in, and the rest of the monorepo's stack.
FORBIDDEN = (
    "livemetrics",
    "producers",
    "msgspec",
    "confluent_kafka",
    "cryptography",
    "pydantic",
    "pydantic_settings",
    "faust",
    "chdb",
    "pyarrow",
    "clickhouse_connect",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(SDK), "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (built,) = out.glob("livemetrics_sdk-*.whl")
    return built


def test_the_wheel_requires_only_httpx_and_is_typed(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = Parser().parsestr(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
    assert meta["Name"] == "livemetrics-sdk" and meta["Requires-Python"] == ">=3.9"
    assert [Requirement(r).name for r in meta.get_all("Requires-Dist")] == ["httpx"]
    assert "livemetrics_sdk/py.typed" in names
    assert {n.split("/")[0] for n in names if not n.startswith("livemetrics_sdk-")} == {"livemetrics_sdk"}


def _closure(name: str) -> set[str]:
    """httpx and what it needs on this Python (markers evaluated, no extras)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        dist = md.distribution(todo.pop())
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _link_installed(dist_name: str, site: Path) -> None:
    dist = md.distribution(dist_name)
    tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    for top in tops:
        src = Path(dist.locate_file(top))
        if src.exists() and not (site / top).exists():
            (site / top).symlink_to(src)


def test_it_imports_and_works_in_a_fresh_venv_with_only_httpx(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    py = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    deps = _closure("httpx")
    assert "httpx" in deps and not deps & {"msgspec", "cryptography", "confluent-kafka", "pydantic-settings"}
    for name in deps:
        _link_installed(name, site)
    check = f"""
import importlib.util, json, sys
import livemetrics_sdk
from livemetrics_sdk import Client, build
from livemetrics_sdk.wire import pack
assert livemetrics_sdk.__file__.startswith({str(venv)!r}), livemetrics_sdk.__file__
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))
assert not loaded, loaded
assert all(importlib.util.find_spec(m) is None for m in {FORBIDDEN!r})  # not even importable here
ev = build.page_view("sess-0001", {{"type": "home"}})
(batch,), refused = pack([ev])
assert json.loads(batch.body)["events"][0]["event_id"] == ev["event_id"] and refused == []
Client("http://127.0.0.1:9", "lm_sk_id_secret", timeout=0.2)
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run([str(py), "-I", "-c", check], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
