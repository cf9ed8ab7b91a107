"""Keys of the sessions table. Session rows and per-(seller, partition) sums rows share one table, so
that both are written to one changelog partition in order; a sums row's key starts with ``SUMS``."""

from __future__ import annotations

SUMS = b"\x00sums\x00"


def session_key(seller: str, session_id: str) -> bytes:
    # Session ids are made by each seller's tracker: two sellers may pick the same one.
    return seller.encode() + b"\x00" + session_id.encode()


def sums_key(seller: str, partition: int) -> bytes:
    return SUMS + seller.encode() + b"\x00" + str(partition).encode()


def parse_sums_key(key: bytes) -> tuple[str, int] | None:
    """(seller, partition) of a sums row's key; None for a session's key."""
    if not key.startswith(SUMS):
        return None
    seller, _, partition = key[len(SUMS) :].rpartition(b"\x00")
    return seller.decode(), int(partition)
