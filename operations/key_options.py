"""What ``livemetrics sellers add`` / ``update`` take for a key's limits, checked before anything is stored:
allowed origins (browser keys) and allowed event types (any key that sends events)."""

from __future__ import annotations

from typing import get_args

from livemetrics.contract import EventType
from livemetrics.origins import normalize_origin

EVENT_TYPES: tuple[str, ...] = get_args(EventType)


def parse_origins(values: list[str] | None) -> list[str]:
    """``--origin`` values (repeated or comma-separated) as canonical origins, each once, in order given."""
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            if part.strip():
                origin = normalize_origin(part)
                if origin not in out:
                    out.append(origin)
    return out


def parse_event_types(value: str | None) -> list[str]:
    """``--event-types page_view,checkout_started,...``; empty (all types) when not given."""
    if value is None:
        return []
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r} in --event-types; known: {', '.join(EVENT_TYPES)}")
    if not types:
        raise ValueError("--event-types is empty; leave it out to allow every type")
    return list(dict.fromkeys(types))


def key_limits(origins: list[str] | None, event_types: str | None) -> dict[str, list[str]]:
    """The ``KeyRecord`` fields for these options (only those given); ``ValueError`` names a bad value."""
    out: dict[str, list[str]] = {}
    parsed_origins = parse_origins(origins)
    if parsed_origins:
        out["origins"] = parsed_origins
    parsed_types = parse_event_types(event_types)
    if parsed_types:
        out["event_types"] = parsed_types
    return out
