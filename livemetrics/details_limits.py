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
DESCRIPTION = (f"free-form provider details: at most {MAX_DEPTH} levels deep, {MAX_ENTRIES} keys and list items "
               f"in all, keys of at most {MAX_KEY_CHARS} characters, strings of at most {MAX_STRING_CHARS}, "
               f"{MAX_BYTES} bytes as JSON; never card data")

_encode = msgspec.json.Encoder().encode


def details_error(details: dict[str, Any], path: str = "$.payment.details") -> str | None:
    """What breaks a limit, naming the path (first found, depth first), or None."""
    entries = 0
    stack: list[tuple[Any, str, int]] = [(details, path, 1)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                return f"`payment.details` is nested deeper than {MAX_DEPTH} levels - at `{where}`"
            entries += len(value)
            if entries > MAX_ENTRIES:
                return f"`payment.details` has more than {MAX_ENTRIES} keys and list items in all - at `{where}`"
            if isinstance(value, dict):
                for k in value:
                    if len(k) > MAX_KEY_CHARS:
                        return (f"a key of {len(k)} characters is over the limit of {MAX_KEY_CHARS} "
                                f"(it starts {k[:20]!r}) - at `{where}`")
                items = [(v, f"{where}.{k}", depth + 1) for k, v in value.items()]
            else:
                items = [(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
            stack.extend(reversed(items))
        elif isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            return f"a string of {len(value)} characters is over the limit of {MAX_STRING_CHARS} - at `{where}`"
    size = len(_encode(details))
    if size > MAX_BYTES:
        return f"`payment.details` is {size} bytes as JSON, over the limit of {MAX_BYTES} - at `{path}`"
    return None
