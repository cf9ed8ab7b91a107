"""What the worker's /metrics and /readyz read from the running Faust app, at scrape time (nothing is
added to the message path): per source partition the end offset, the read and committed offsets and
the lag, the rebalances so far, the tables' sizes, the changelog rows not yet acknowledged (and those
waiting for room in a full producer queue: the worker waiting on Kafka), and whether the worker is ready.

Read from the ops server's thread: these are plain reads of the consumer's dicts and of aiokafka's
subscription state (copied before use), never a call into the event loop or a broker request.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from streams import faust_internals

ROCKSDB_BYTES = ("rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables")


def _consumer(app: Any) -> Any:
    return faust_internals.created_consumer(app)  # never ``app.consumer``: that would create one here


def offsets(app: Any) -> list[tuple[str, int, int | None, int | None, int | None]]:
    """(topic, partition, end offset, read offset, committed offset) of each assigned partition."""
    consumer = _consumer(app)
    if consumer is None:
        return []
    try:
        assigned = list(consumer.assignment())
    except Exception:  # noqa: BLE001 - not started yet, or being closed
        return []
    read, committed = faust_internals.read_offsets(consumer), faust_internals.committed_offsets(consumer)
    rows = []
    for tp in assigned:
        try:
            end = consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - assignment changing under us
            end = None
        rows.append((tp.topic, tp.partition, end, read.get(tp), committed.get(tp)))
    return rows


def table_sizes(app: Any) -> Iterator[tuple[str, int, int | None]]:
    """(table, keys, bytes or None) per table: RocksDB's estimates (no scan), a memory store's length."""
    for name, table in list(app.tables.items()):
        store = table.data
        dbs = faust_internals.partition_dbs(store)
        if dbs is not None:
            keys = size = 0
            for db in dbs.values():
                try:
                    keys += db.property_int_value("rocksdb.estimate-num-keys") or 0
                    size += sum(db.property_int_value(p) or 0 for p in ROCKSDB_BYTES)
                except Exception:  # noqa: BLE001 - closed by a revocation meanwhile: counted at the next scrape
                    continue
            yield name, keys, size
        else:
            yield name, len(getattr(store, "data", {})), None


def changelog_rows() -> tuple[int, int] | None:
    """(rows not yet acknowledged, of which waiting for room in the producer's queue) of the sessions
    table's changelog (``streams/changelog.py``); None before the worker's tables exist (never imported here:
    that would make them)."""
    log = getattr(sys.modules.get("streams.tables"), "sessions_changelog", None)
    if log is None:
        return None
    return log.pending(), log.waiting()


def health(watch: Any) -> tuple[bool, dict]:
    """/healthz: the loop's heartbeat (``livemetrics/loop_watch.py``: 503 once stuck), and, while changelog rows
    wait for room in the producer's full queue, that the worker is waiting on Kafka (200: the loop runs, it is
    not stuck; nothing should restart it for that)."""
    ok, details = watch.health()
    log = getattr(sys.modules.get("streams.tables"), "sessions_changelog", None)
    if ok and log is not None and (waiting := log.waiting()):  # a stuck loop is said so, whatever it waited on
        details = {
            **details,
            "waiting_on": "Kafka",
            "waiting_s": round(log.waiting_s(), 1),
            "detail": f"{waiting} changelog rows wait for room in the producer's queue (Kafka acknowledges "
            "nothing): the worker reads nothing more until there is room",
        }
    return ok, details


def ready(app: Any) -> tuple[bool, dict]:
    """Ready: partitions assigned, and neither rebalancing nor recovering tables."""
    consumer = _consumer(app)
    try:
        assigned = len(consumer.assignment()) if consumer is not None else 0
    except Exception:  # noqa: BLE001
        assigned = 0
    rebalancing = bool(getattr(app, "rebalancing", False))
    recovering = bool(getattr(app, "in_recovery", False))
    details = {
        "partitions_assigned": assigned,
        "rebalancing": rebalancing,
        "recovering": recovering,
        "rebalances": getattr(app, "rebalancing_count", 0),
    }
    return assigned > 0 and not rebalancing and not recovering, details


class WorkerCollector:
    """A prometheus-client collector over ``app`` (registered once, read at each scrape)."""

    def __init__(self, app: Any):
        self.app = app

    def collect(self):
        end = GaugeMetricFamily(
            "livemetrics_worker_end_offset",
            "End (high watermark) offset of an assigned partition",
            labels=["topic", "partition"],
        )
        read = CounterMetricFamily(
            "livemetrics_worker_read_offset",
            "Last offset read from an assigned partition (its rate is the partition's messages/s)",
            labels=["topic", "partition"],
        )
        lag = GaugeMetricFamily(
            "livemetrics_worker_consumer_lag",
            "Messages of an assigned partition past the committed offset",
            labels=["topic", "partition"],
        )
        for topic, partition, hw, r, c in offsets(self.app):
            labels = [topic, str(partition)]
            if hw is not None:
                end.add_metric(labels, hw)
                lag.add_metric(labels, max(hw - (c or 0), 0))
            if r is not None:
                read.add_metric(labels, r)
        ok, details = ready(self.app)
        rebalances = CounterMetricFamily("livemetrics_worker_rebalances", "Rebalances this worker took part in")
        rebalances.add_metric([], details["rebalances"])
        assigned = GaugeMetricFamily("livemetrics_worker_partitions_assigned", "Partitions assigned to this worker")
        assigned.add_metric([], details["partitions_assigned"])
        is_ready = GaugeMetricFamily("livemetrics_worker_ready", "1 when /readyz answers 200")
        is_ready.add_metric([], 1 if ok else 0)
        keys = GaugeMetricFamily(
            "livemetrics_worker_table_keys", "Keys in a table's local store (RocksDB: an estimate)", labels=["table"]
        )
        size = GaugeMetricFamily(
            "livemetrics_worker_table_bytes",
            "Bytes of a table's RocksDB store (SST files and memtables)",
            labels=["table"],
        )
        for name, n, b in table_sizes(self.app):
            keys.add_metric([name], n)
            if b is not None:
                size.add_metric([name], b)
        yield from (end, read, lag, rebalances, assigned, is_ready, keys, size)
        rows = changelog_rows()
        if rows is not None:
            unacked = GaugeMetricFamily(
                "livemetrics_worker_changelog_unacknowledged_rows",
                "Table changelog rows written locally and not yet acknowledged by Kafka (offsets wait for them)",
            )
            unacked.add_metric([], rows[0])
            waiting = GaugeMetricFamily(
                "livemetrics_worker_changelog_waiting_rows",
                "Of those, rows waiting for room in the changelog producer's full queue: while above 0 the worker "
                "reads nothing more (waiting on Kafka, not stuck)",
            )
            waiting.add_metric([], rows[1])
            yield from (unacked, waiting)
