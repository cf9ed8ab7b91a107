"""The lock files (make lock) cover pyproject.toml: each dependency pinned, at a version it allows."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from livemetrics import http_head
from producers.gateway import enrich
from streams import faust_internals

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    return {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^ \\\n]+)", text, re.M)}


@pytest.mark.parametrize(
    "lock, deps",
    [
        ("runtime.lock", PYPROJECT["dependencies"]),
        ("test.lock", PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["test"]),
    ],
)
def test_every_dependency_is_pinned_within_its_range(lock, deps):
    pinned = pins(lock)
    wrong = []
    for dep in map(Requirement, deps):
        have = pinned.get(canonicalize_name(dep.name))
        if have is None or not dep.specifier.contains(have, prereleases=True):
            wrong.append(f"{dep}: {have or 'not in the lock'}")
    assert wrong == [], "run `make lock` after changing pyproject.toml"


def test_every_pin_has_hashes():
    for lock in ("runtime.lock", "test.lock"):
        blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", (ROOT / "requirements" / lock).read_text())
        assert all("--hash=sha256:" in b for b in blocks if "==" in b.split("\n")[0]), lock


def test_faust_is_pinned_exactly_to_the_version_our_internals_were_written_against():
    faust = next(Requirement(d) for d in PYPROJECT["dependencies"] if d.startswith("faust-streaming"))
    assert str(faust.specifier) == f"=={faust_internals.VERSION}"
    assert pins("runtime.lock")["faust-streaming"] == faust_internals.VERSION


def test_crawlerdetect_is_pinned_exactly_to_the_version_whose_internals_the_gateway_reads():
    """The gateway's bot check reads crawlerdetect's crawler data and exclusion regex (module internals):
    another version may rename or reshape them, so pyproject.toml admits only the one they were read from,
    the locks install it, and the comparison with crawlerdetect's answers runs against it."""
    crawlerdetect = next(Requirement(d) for d in PYPROJECT["dependencies"] if d.startswith("crawlerdetect"))
    assert str(crawlerdetect.specifier) == f"=={enrich.CRAWLERDETECT_VERSION}"
    for lock in ("runtime.lock", "test.lock"):
        assert pins(lock)["crawlerdetect"] == enrich.CRAWLERDETECT_VERSION, lock
    assert version("crawlerdetect") == enrich.CRAWLERDETECT_VERSION, "installed: run make setup"


def test_uvicorn_is_pinned_exactly_to_the_version_whose_protocol_the_head_bounds_subclass():
    """livemetrics/http_head.py overrides uvicorn's httptools protocol's callbacks and reads its request
    cycle's fields; another uvicorn may change them without an error, and the head and body bounds would
    silently stop holding, so only the version they were written against is admitted and installed."""
    uvicorn = next(Requirement(d) for d in PYPROJECT["dependencies"] if d.startswith("uvicorn"))
    assert str(uvicorn.specifier) == f"=={http_head.UVICORN_VERSION}"
    for lock in ("runtime.lock", "test.lock"):
        assert pins(lock)["uvicorn"] == http_head.UVICORN_VERSION, lock
    assert version("uvicorn") == http_head.UVICORN_VERSION, "installed: run make setup"
