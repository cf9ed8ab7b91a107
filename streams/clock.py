"""Wall clock in epoch milliseconds (one function so tests and agents agree on the unit)."""

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
