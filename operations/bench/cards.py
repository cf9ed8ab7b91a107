"""``livemetrics bench cards``: what the gateway's validation of one hostile event costs, against what the
event pays in the rate limits (docs/ingest.md, "Expensive validation is paid for up front").

Each shape is a `payment_failed` event of just under MAX_EVENT_BYTES whose `payment.details` holds what makes
the card check read many digit groups (long runs of short groups joined by spaces or commas, arrays of
four-digit items, card numbers in mixed layouts, an object of four-digit values). Per shape: the CPU of ``parse_body`` on the event as the only one of its body (best of as
many runs as ``--duration`` allows, at least 3), what the body counts as (``least_cost``), the CPU per
counted event, and per second at a browser key's default rate if every event were this one. Ceiling, in the
same run: msgspec decoding the same bytes (what any reading of the event costs)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from livemetrics.contract import MAX_BATCH, MAX_EVENT_BYTES
from livemetrics.settings import Settings
from operations.bench import emit
from producers.gateway.events import least_cost
from producers.gateway.ingest import parse_body

SHAPES: dict[str, Callable[[int], Any]] = {
    "one_digit_groups": lambda n: " ".join(["1"] * n),  # "1 1 1 ...": a window at every group
    "four_digit_text_commas": lambda n: ",".join(["1111"] * n),
    # "1,1,1,...": a window at every group for the rules before the twenty-first session (0.69 ms per counted
    # event); a comma groups digits only in a printed layout, which one-digit groups never are
    "one_digit_commas": lambda n: ",".join(["1"] * n),
    "two_digit_list": lambda n: ", ".join(["12"] * n),
    "int_array": lambda n: [1111] * n,
    "quoted_array": lambda n: ["1111"] * n,
    "list_after_numbers": lambda n: [12, 4111, 1111, 1111, 1112] * n,
    "mixed_separator_cards": lambda n: "4111-1111 1111.1111, 12/28 " * n,  # a card each: rejected, redacted
    # an object's values read as an array's items ({"k0": "1234", "k1": "4111", ...}): four fours, then a
    # fifth four (no printed layout, no card), as the nineteenth session's hostile object
    "object_of_fours": lambda n: {f"k{i}": "4111" if i % 5 else "1234" for i in range(n)},
}


def _event(details: Any) -> bytes:
    ev = {
        "event_id": str(uuid.uuid4()),
        "type": "payment_failed",
        "session_id": "sess-bench-cards",
        "ts": int(time.time() * 1000),
        "payment": {"method": "card", "amount": 10, "currency": "EUR", "error_code": "declined", "details": details},
    }
    return json.dumps(ev).encode()


def largest(shape: Callable[[int], Any], limit: int = MAX_EVENT_BYTES - 64) -> bytes:
    """The event of ``shape`` with the most repetitions that stays within ``limit`` bytes."""
    lo, hi = 1, 2
    while len(_event({"x": shape(hi)})) <= limit:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if len(_event({"x": shape(mid)})) <= limit else (lo, mid)
    return _event({"x": shape(lo)})


def _best_cpu_s(fn: Callable[[], object], budget_s: float) -> float:
    best, runs, until = float("inf"), 0, time.monotonic() + budget_s
    while runs < 3 or time.monotonic() < until:
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
        runs += 1
    return best


def run(args) -> int:
    rate = Settings().browser_rate_per_s
    most = max(MAX_BATCH, 2 * rate)
    budget = max(0.2, args.duration / len(SHAPES))
    for name, shape in SHAPES.items():
        raw = largest(shape)
        cpu = _best_cpu_s(lambda raw=raw: parse_body(raw), budget)
        ceiling = _best_cpu_s(lambda raw=raw: msgspec.json.decode(raw), min(budget, 0.5))
        counted = least_cost(raw, most)
        labels = {"shape": name, "bytes": len(raw)}
        emit("cards", "validation_ms_per_event", cpu * 1000, "ms", ceiling_ms=round(ceiling * 1000, 4), **labels)
        emit("cards", "counted_events", counted, "events", **labels)
        emit("cards", "validation_ms_per_counted_event", cpu * 1000 / counted, "ms", **labels)
        emit("cards", "key_cpu_s_per_s_at_default_rate", cpu / counted * rate, "s/s", browser_rate_per_s=rate, **labels)
    return 0
