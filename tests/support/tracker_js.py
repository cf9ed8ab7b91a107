"""The npm package producers/tracker-js for the tests: ``npm ci`` (from the npm registry, exactly
package-lock.json) at most once per version of the lock file, shared with ``make tracker-js`` through the
same stamp file, and under a file lock so that two pytest workers never install at once."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "producers" / "tracker-js"


def tool(name: str) -> str:
    """The path of ``node``/``npm``; a missing one fails the test (it is part of what make test installs)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: the tracker-js tests need Node.js and npm (make tracker-js installs "
            "Debian's nodejs and npm)"
        )
    return path


def stamp() -> Path:
    """The file ``make tracker-js`` touches after ``npm ci`` (Makefile: the lock file's sha1, 12 hex digits)."""
    digest = hashlib.sha1((PACKAGE / "package-lock.json").read_bytes()).hexdigest()[:12]
    return PACKAGE / "node_modules" / f".installed-{digest}"


def install() -> Path:
    """The package with its node_modules, as package-lock.json says; returns its directory."""
    tool("node")
    npm = tool("npm")
    with open(PACKAGE / "package-lock.json", "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other pytest worker waits here, then finds the stamp
        try:
            if not stamp().exists():
                r = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE, capture_output=True, text=True, timeout=600
                )
                assert r.returncode == 0, f"npm ci failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
                stamp().touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return PACKAGE
