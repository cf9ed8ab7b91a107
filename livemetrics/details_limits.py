"""Limits on `payment.details`, the one free-form object of the contract (docs/ingest.md, "Limits").

Payment providers put decline reasons, risk scores and network codes there: a few flat keys, sometimes a
nested object or two. The limits keep it that size, so that one event cannot make the dead-letter copy,
the alert feed or a ClickHouse row balloon (the event itself is at most 32 KiB).
"""

from __future__ import annotations

from typing import Any

import msgspec

MAX_DEPTH = 5  # `details` itself is level 1: {"a": {"b": {"c": {"d": 1}}}} is 4 levels
MAX_ENTRIES = 100  # keys and list items, at every level together
MAX_KEY_CHARS = 100
MAX_STRING_CHARS = 1024
MAX_BYTES = 8 * 1024  # `details` encoded as JSON
DESCRIPTION = (
    f"free-form provider details: at most {MAX_DEPTH} levels deep, {MAX_ENTRIES} keys and list items "
    f"in all, keys of at most {MAX_KEY_CHARS} characters, strings of at most {MAX_STRING_CHARS}, "
    f"{MAX_BYTES} bytes as JSON; never card data"
)

_encode = msgspec.json.Encoder().encode


def _where(path: str, parts: tuple) -> str:
    return path + "".join(f"[{p}]" if p.__class__ is int else f".{p}" for p in parts)


def details_error(details: dict[str, Any], path: str = "$.payment.details") -> str | None:
    """What breaks a limit, naming the path, or None. Runs for every event with `details`: paths are spelt
    only for an error, and the JSON size is measured only when an upper bound of it (6 bytes a character,
    as `\u0000` escapes) is over the limit."""
    entries, bound = 0, 2
    stack: list[tuple[Any, tuple, int]] = [(details, (), 1)]
    while stack:
        value, parts, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"`payment.details` is nested deeper than {MAX_DEPTH} levels - at `{_where(path, parts)}`"
        entries += len(value)
        if entries > MAX_ENTRIES:
            return (
                f"`payment.details` has more than {MAX_ENTRIES} keys and list items in all - at `{_where(path, parts)}`"
            )
        kids = []
        for k, v in value.items() if value.__class__ is dict else enumerate(value):
            if k.__class__ is str:
                if len(k) > MAX_KEY_CHARS:
                    return (
                        f"a key of {len(k)} characters is over the limit of {MAX_KEY_CHARS} "
                        f"(it starts {k[:20]!r}) - at `{_where(path, parts)}`"
                    )
                bound += 6 * len(k) + 4
            cls = v.__class__
            if cls is str:
                if len(v) > MAX_STRING_CHARS:
                    return (
                        f"a string of {len(v)} characters is over the limit of {MAX_STRING_CHARS} "
                        f"- at `{_where(path, parts + (k,))}`"
                    )
                bound += 6 * len(v) + 3
            elif cls is dict or cls is list:
                kids.append((v, parts + (k,), depth + 1))
                bound += 3
            elif cls is int:
                bound += v.bit_length() // 3 + 3  # decimal digits <= bits / 3.32 + 1, a sign, a comma
            else:
                bound += 26  # a float's repr is at most 24 characters; true, false, null fewer
        stack.extend(reversed(kids))
    if bound > MAX_BYTES:
        size = len(_encode(details))
        if size > MAX_BYTES:
            return f"`payment.details` is {size} bytes as JSON, over the limit of {MAX_BYTES} - at `{path}`"
    return None
