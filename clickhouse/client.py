"""clickhouse-connect clients: one per thread and DSN.

A client is not for concurrent use: the chdb backend serialises the calls on one client with a lock
(an insert of a big batch would hold up every report query behind it), and a server rejects concurrent
queries in one HTTP session. Clients of one process share the chdb engine (chdb allows one process per
data directory, any number of handles in it), so one per thread lets the sink's stages, the session fold
and the API's queries run at the same time. Clients of threads that have ended are closed when the next
one is made.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from livemetrics.in_use import claim_chdb
from livemetrics.settings import Settings

# ClickHouse 26.x defaults async_insert to 1; we want inserts that are durable when acknowledged
# and de-duplicated by token, so every insert states its settings.
INSERT_SETTINGS = {
    "async_insert": 0,
    "wait_for_async_insert": 1,
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
}
# Inserts into `events` (the sink and the benchmark's raw ceiling). optimize_on_insert would pre-merge
# rows of equal key inside each view's block: every view already groups by its target's sorting key,
# and the reports aggregate across parts anyway, so it only costs. The views run concurrently.
EVENTS_INSERT_SETTINGS = {**INSERT_SETTINGS, "optimize_on_insert": 0, "parallel_view_processing": 1}

_clients: dict[tuple[str, threading.Thread], Client] = {}
# Guards ``_clients`` only, for as long as a dict update takes: never held while a client connects. Making
# a client asks the server (its version, settings), and with the server unreachable (packets dropped, a
# listener that never answers) that waits out the client's timeouts; every other thread making a client,
# /readyz's included, waited behind it. No two clients for one key can be made at once anyway: the key
# holds the calling thread.
_lock = threading.Lock()
# chdb opens are serialised among themselves: the first one starts the process's engine (and takes our
# claim on its directory, livemetrics.in_use), which is not to be raced; a chdb open waits on no network.
_chdb_opening = threading.Lock()


def get_client(settings: Settings) -> Client:
    """This thread's client for the configured DSN."""
    key = (settings.clickhouse_url, threading.current_thread())
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        gone = [_clients.pop(k) for k in list(_clients) if not k[1].is_alive()]
    for c in gone:
        _close(c)
    url = key[0]
    if url.startswith("chdb:"):
        with _chdb_opening:
            Path(url.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
            claim_chdb(settings)  # chdb allows one process per directory: InUse names the one holding it
            try:
                client = clickhouse_connect.get_client(dsn=url)
            except Exception as exc:
                if "chdb" in str(exc):
                    raise RuntimeError(_chdb_open_error(Path(url.removeprefix("chdb://")), exc)) from exc
                raise
    else:
        client = clickhouse_connect.get_client(dsn=url)
    with _lock:
        _clients[key] = client
    return client


def probe_client(settings: Settings, timeout_s: float) -> Client:
    """A client for a readiness probe (``clickhouse/probe.py``), not shared: over HTTP its connect and read
    timeouts are ``timeout_s``, so a server that accepts and never answers ends a probe in that time rather
    than in clickhouse-connect's (300 s to read); chdb waits on no network: this thread's client."""
    url = settings.clickhouse_url
    if url.startswith("chdb:"):
        return get_client(settings)
    parts = urlsplit(url)  # the DSN's own timeouts would win over these (clickhouse-connect reads them last)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("connect_timeout", "send_receive_timeout")]
    dsn = urlunsplit(parts._replace(query=urlencode(query)))
    return clickhouse_connect.get_client(dsn=dsn, connect_timeout=timeout_s, send_receive_timeout=timeout_s)


def _chdb_open_error(directory: Path, exc: Exception) -> str:
    """chdb says only "Error initializing EmbeddedServer: . (BAD_ARGUMENTS)" when another process has
    the directory open: name that process (one that did not take our lock, e.g. an older version)."""
    from livemetrics.holders import describe, openers_of

    pids = [p for p in openers_of(directory) if p != os.getpid()]
    if pids:
        return (
            f"cannot open the ClickHouse data directory {directory}: it is in use by "
            f"{', '.join(describe(p) for p in pids)} (chdb allows one process per directory); chdb said: {exc}"
        )
    return f"cannot open the ClickHouse data directory {directory}: {exc}"


def _close(client: Client) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


def close_all() -> None:
    """Close every thread's clients (before a chdb data directory is removed)."""
    with _lock:
        for c in _clients.values():
            _close(c)
        _clients.clear()
