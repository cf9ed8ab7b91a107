"""The suite's test files, slowest first (a pytest plugin, loaded by tests/conftest.py).

``make test`` runs three xdist workers that take a whole file at a time (``--dist loadfile``). xdist's
default order puts the files with the most tests first, so the few long files (a schemathesis run, the
reports' oracle walks, the broker outage: minutes each, a handful of tests) started last, while the other
workers had run out of files: minutes of one busy worker at the end. With ``--no-loadscope-reorder`` the
workers take files in collection order, which this plugin sets to the seconds each file took in a recorded
run (``tests/file_seconds.json``), longest first; a file not in it keeps its place after them. The order
only schedules: every test runs as before. ``--file-seconds-out PATH`` writes a run's seconds per file
(setup, call and teardown of its tests) to refresh the record."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

RECORD = Path(__file__).resolve().parents[1] / "file_seconds.json"
_spent: defaultdict[str, float] = defaultdict(float)


def pytest_addoption(parser):
    parser.addoption(
        "--file-seconds-out", default=None, help="write the seconds each test file took here (JSON), for file_seconds"
    )


def test_file(nodeid: str) -> str:
    """The file part of a test's node id."""
    return nodeid.split("::", 1)[0]


def slowest_first(nodeids: list[str], seconds: dict[str, float]) -> list[int]:
    """The positions of ``nodeids`` with their files in descending recorded seconds (unknown: 0), each file's
    tests together and in their own order, files of equal seconds in their first test's order."""
    first: dict[str, int] = {}
    for i, nodeid in enumerate(nodeids):
        first.setdefault(test_file(nodeid), i)
    return sorted(
        range(len(nodeids)),
        key=lambda i: (-seconds.get(test_file(nodeids[i]), 0.0), first[test_file(nodeids[i])], i),
    )


def pytest_collection_modifyitems(session, config, items):
    seconds = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    order = slowest_first([item.nodeid for item in items], seconds)
    items[:] = [items[i] for i in order]


def pytest_runtest_logreport(report):
    _spent[test_file(report.nodeid)] += report.duration


def pytest_sessionfinish(session):
    out = session.config.getoption("--file-seconds-out")
    if out and not hasattr(session.config, "workerinput"):  # the controller: it has every worker's reports
        ranked = dict(sorted(((f, round(s, 1)) for f, s in _spent.items()), key=lambda fs: -fs[1]))
        Path(out).write_text(json.dumps(ranked, indent=1) + "\n")
