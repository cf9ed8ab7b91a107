"""The keys of stored events (``event_key_batches``, migrations 007 and 008): what the sink's write step
checks so that each (seller_id, event_id) is stored once (``queries/sink_events_unseen.sql``), and their
purge.

A key is needed only as long as a copy of its event can still arrive: a storefront's retry comes within
minutes, and a copy in Kafka is read by the sink soon after the first (the two are close together in the
same raw partition), and a log the sink reads again from its start at a reset (clickhouse/sink_logs.py) holds
events up to ~1 h past its retention (hourly segments). ``dedup_window_hours`` (default 74; the settings refuse
less than the raw topics' retention + 2 h) bounds the table:
once a day the sink's fold thread (``session_fold.SessionFolder``) deletes the keys stored longer ago.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from clickhouse.client import get_client
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.event_keys")


def purge_event_keys(settings: Settings, now: datetime | None = None) -> int:
    """Delete the keys stored more than ``dedup_window_hours`` before ``now`` (default: the server's
    clock); returns how many went. A copy of such an event arriving later would be stored again."""
    c, table = get_client(settings), f"{settings.clickhouse_database}.event_key_batches"
    if now is None:
        ((now,),) = c.query("SELECT now('UTC')").result_rows
    before = (now if now.tzinfo else now.replace(tzinfo=UTC)) - timedelta(hours=settings.dedup_window_hours)
    where = "stored_at < toDateTime({before:UInt32}, 'UTC')"
    params = {"before": int(before.timestamp())}
    ((expired,),) = c.query(f"SELECT count() FROM {table} WHERE {where}", parameters=params).result_rows
    if expired:
        c.command(f"DELETE FROM {table} WHERE {where}", parameters=params)
        log.info("purged %d event keys stored over %d hours ago", expired, settings.dedup_window_hours)
    return int(expired)
