"""Each module a process starts from imports on its own, whatever the order its imports take: the session
reports registered their refill with the fold at import, and a process that imported the fold first (the
standalone sink: clickhouse.sink -> session_fold -> query -> session_reports -> session_fold, partly
initialized) died at start with an AttributeError (CI at aba0cdc: four sink tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENTRY_MODULES = ["clickhouse.session_fold", "clickhouse.sink", "clickhouse.query", "clickhouse.session_reports"]


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_a_module_imported_first_in_a_fresh_process_imports(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
