"""The import graph keeps its direction: core (livemetrics/) <- services (producers/, streams/,
clickhouse/, api/) <- operations (operations/). Every import counts, also those inside functions
(docs/architecture.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE, SERVICES, OPERATIONS = {"livemetrics"}, {"producers", "streams", "clickhouse", "api"}, {"operations"}
# `python -m livemetrics` has to live in the core package, but it is the command line's front door.
ENTRY_POINTS = {Path("livemetrics/__main__.py")}
# Separate distributions in the tree: they ship alone and may import nothing of ours.
STANDALONE = (Path("producers/sdk-python"), Path("producers/tracker-js"))


def layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    if top in CORE:
        return "core"
    if top in SERVICES:
        return "service"
    if top in OPERATIONS:
        return "operations"
    return None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every absolute module a file imports, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def source_files() -> list[Path]:
    files = []
    for top in sorted(CORE | SERVICES | OPERATIONS):
        for p in (ROOT / top).rglob("*.py"):
            rel = p.relative_to(ROOT)
            if not any(rel.is_relative_to(s) for s in STANDALONE) and "node_modules" not in rel.parts:
                files.append(rel)
    return files


ALLOWED = {"core": {"core"}, "service": {"core", "service"}, "operations": {"core", "service", "operations"}}


def violations(files: list[Path], root: Path = ROOT) -> list[str]:
    out = []
    for rel in files:
        own = "operations" if rel in ENTRY_POINTS else layer_of(rel.parts[0])
        for line, module in imports_of(root / rel):
            target = layer_of(module)
            if target is not None and own is not None and target not in ALLOWED[own]:
                out.append(f"{rel}:{line}: the {own} layer imports {module} ({target})")
    return out


def test_dependencies_point_from_operations_to_services_to_core():
    files = source_files()
    assert len(files) > 100 and Path("operations/cli.py") in files
    assert violations(files) == []


def test_a_core_module_that_imports_a_service_is_named(tmp_path):
    (tmp_path / "livemetrics").mkdir()
    (tmp_path / "livemetrics" / "bad.py").write_text("def f():\n    from streams.app import app\n")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "bad.py").write_text("import operations.up\n")
    got = violations([Path("livemetrics/bad.py"), Path("api/bad.py")], root=tmp_path)
    assert got == [
        "livemetrics/bad.py:2: the core layer imports streams.app (service)",
        "api/bad.py:1: the service layer imports operations.up (operations)",
    ]


@pytest.mark.parametrize("path", ["livemetrics/key_format.py"])
def test_the_key_format_needs_only_the_standard_library(path):
    mods = {m.split(".")[0] for _, m in imports_of(ROOT / path)}
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}, mods


def test_the_sdk_imports_nothing_of_the_server():
    for p in (ROOT / STANDALONE[0] / "livemetrics_sdk").rglob("*.py"):
        assert [m for _, m in imports_of(p) if layer_of(m)] == [], p


def test_the_api_builds_its_empty_snapshot_without_the_worker():
    # The snapshot's shape is the contract's (livemetrics/snapshot.py); the API imports nothing of streams/.
    for p in (ROOT / "api").rglob("*.py"):
        assert not [m for _, m in imports_of(p) if m.split(".")[0] == "streams"], p
