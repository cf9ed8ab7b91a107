"""Faust internals behind one door: outside ``streams/faust_internals.py`` no module of ``streams/`` reads,
writes or overrides a private attribute (a name with one leading underscore) of anything but itself."""

from __future__ import annotations

import ast
from pathlib import Path

STREAMS = Path(__file__).parents[3] / "streams"
DOOR = STREAMS / "faust_internals.py"
# Libraries whose classes a streams/ class may subclass only through the door.
FOREIGN = ("faust", "mode", "aiokafka")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _foreign_names(tree: ast.Module) -> set[str]:
    """Names bound by ``import faust`` / ``from faust... import X`` (and the other foreign libraries)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in FOREIGN}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FOREIGN:
            out |= {a.asname or a.name for a in node.names}
    return out


def _root(expr: ast.expr) -> str | None:
    while isinstance(expr, ast.Attribute):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def private_uses(source: str, filename: str = "<src>") -> list[str]:
    """``file:line: what`` for every private attribute used on an object other than ``self``/``cls`` of a
    class of our own: ``x._a``, ``super()._a``, ``getattr(x, "_a")`` (and has/set/delattr), and in a
    subclass of a foreign class, ``self._a`` or a method ``_a`` (an override)."""
    tree = ast.parse(source, filename)
    foreign = _foreign_names(tree)
    found: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', 0)}: {what}")

    def visit(node: ast.AST, in_foreign_class: bool) -> None:
        if isinstance(node, ast.ClassDef):
            in_foreign_class = any(_root(b) in foreign for b in node.bases)
            for item in node.body:
                if in_foreign_class and isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    if _private(item.name):
                        flag(item, f"overrides {item.name} of a foreign class")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not own or in_foreign_class:
                flag(node, f"{ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            flag(node, f"{node.func.id}(..., {node.args[1].value!r})")
        for child in ast.iter_child_nodes(node):
            visit(child, in_foreign_class)

    visit(tree, False)
    return found


def test_no_module_of_streams_but_the_door_uses_a_private():
    uses = []
    for path in sorted(STREAMS.rglob("*.py")):
        if path != DOOR:
            uses += private_uses(path.read_text(), str(path.relative_to(STREAMS.parent)))
    assert uses == [], "go through streams/faust_internals.py:\n" + "\n".join(uses)


def test_the_check_finds_each_kind_of_use():
    source = """
import faust
from faust.tables import Table as T

consumer._commit = hook
db = store._db_for_partition(0)
x = super()._maybe_set_key_ttl
y = getattr(app, "_consumer", None)
hasattr(store, "_dbs")

class Mine:
    def f(self):
        return self._own

class Windowed(T):
    def _maybe_set_key_ttl(self, key, partition):
        return self._partition_timestamp_keys

class Plain(faust.Record):
    def g(self):
        return self.public
"""
    assert [u.split(": ", 1)[1] for u in private_uses(source)] == [
        "consumer._commit",
        "store._db_for_partition",
        "super()._maybe_set_key_ttl",
        "getattr(..., '_consumer')",
        "hasattr(..., '_dbs')",
        "overrides _maybe_set_key_ttl of a foreign class",
        "self._partition_timestamp_keys",
    ]
