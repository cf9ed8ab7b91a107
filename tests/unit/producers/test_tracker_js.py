"""The npm package @livemetrics/tracker (producers/tracker-js): its own tests under Node's test runner (the
core against a fake window: wire format, batching, sessions, beacons, route changes; the script-tag build
against t.js) and its TypeScript declarations checked by tsc on a typed usage file. Node and npm missing is
a failure, not a skip."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import tracker_js


@pytest.fixture(scope="module")
def package():
    return tracker_js.install()


def run(cmd: list[str], cwd) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-6000:]}"
    return out


def test_node_test_runner_passes(package):
    files = sorted(str(p.relative_to(package)) for p in (package / "test").glob("*.test.js"))
    assert {"test/core.test.js", "test/script-tag.test.js", "test/react.test.js"} <= set(files)
    out = run([tracker_js.tool("node"), "--test", *files], package)
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail|skipped|todo|cancelled) (\d+)$", out, re.M)}
    assert counts["tests"] >= 18 and counts["pass"] == counts["tests"], out[-3000:]


def test_typescript_declarations_check(package):
    run([str(package / "node_modules" / ".bin" / "tsc"), "-p", "test/types"], package)
