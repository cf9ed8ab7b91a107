"""``livemetrics bench <part>``: each part measures its figure and its ceiling in the same run and
prints one JSON object per line (BENCHMARKS.md)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

PARTS = ("gateway", "streams", "sink", "queries", "ws", "e2e", "alerts", "cards")


def emit(bench: str, metric: str, value: float, unit: str, **labels: Any) -> dict:
    """Print one figure as a JSON line (and return it)."""
    row = {
        "bench": bench,
        "metric": metric,
        "value": round(float(value), 3),
        "unit": unit,
        "labels": labels,
        "cores": os.cpu_count(),
    }
    print(json.dumps(row), flush=True)
    return row


def run(part: str, args) -> int:
    from livemetrics import lifeline

    lifeline.exit_on_signals()  # `timeout`'s SIGTERM unwinds through the parts' clean-up of their children
    parts = PARTS if part == "all" else (part,)
    status = 0
    for name in parts:
        try:
            mod = importlib.import_module(f"operations.bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"operations.bench.{name}":
                raise
            print(f"livemetrics bench {name}: not yet implemented", file=sys.stderr)
            status = 2
            continue
        status = mod.run(args) or status
    return status
