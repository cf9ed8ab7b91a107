"""The one way to start a livemetrics command as a child process (``up``, benchmarks, tests)."""

from __future__ import annotations

import sys


def livemetrics_argv(*args: str) -> list[str]:
    """``python -m livemetrics <args>`` under this interpreter: what an operator would type, so process
    listings and "in use by" messages name the command the same way."""
    return [sys.executable, "-m", "livemetrics", *args]
