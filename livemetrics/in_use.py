"""Refuse, in words, to start on a data directory or port another process holds (holders.py): a
second ``up`` on the same data directory, an ``api``/``sink``/``migrate`` on a chdb directory that a
running API owns (chdb allows one process per directory), a port already listened on."""

from __future__ import annotations

from pathlib import Path

from livemetrics.holders import InUse, check_port, claim_dir
from livemetrics.settings import Settings

__all__ = ["InUse", "check_port", "chdb_dir", "claim_chdb"]


def chdb_dir(s: Settings) -> Path | None:
    url = s.clickhouse_url
    return Path(url.removeprefix("chdb://")) if url.startswith("chdb:") else None


def claim_chdb(s: Settings) -> None:
    """Hold the embedded ClickHouse directory for this process (no-op for a ClickHouse server)."""
    d = chdb_dir(s)
    if d is not None:
        claim_dir(d, "the ClickHouse data directory")
