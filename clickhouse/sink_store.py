"""Storing one batch of the sink in ClickHouse, in two steps (``events_json``): ``prepare`` on the sink's
preparing thread, ``write`` on its inserting thread. ``write`` tells the two kinds of failure apart
(``sink_errors.classify``): a transient one is raised (the sink waits and retries the batch whole, with
its token), a refusal of the rows is narrowed down (``sink_narrow``), the refused rows going to the
dead-letter topic (``sink_dead_letter``).

Each step's thread is watched (``prepare_watch``, ``insert_watch``: livemetrics/loop_watch.py): it beats when
a step starts and declares its waits on ClickHouse (every call, through ``_Waiting``) and on Kafka (the dead
letters); the insert thread's wait for the prepare step is a ``waiting_for`` of the prepare thread, and the
sink's own thread waits for the insert thread the same way. So a step stuck in its own code counts as stuck
(/healthz 503 naming that thread, the process ends with its stack), and one waiting on ClickHouse as waiting."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from clickhouse import events_json, sink_replay
from clickhouse.client import EVENTS_INSERT_SETTINGS, INSERT_SETTINGS, get_client
from clickhouse.columns import alerts_from_messages
from clickhouse.events_json import Prepared
from clickhouse.inserts_in_flight import IN_FLIGHT
from clickhouse.sink_batch import Batch
from clickhouse.sink_dead_letter import DeadLetters
from clickhouse.sink_errors import REFUSED, classify
from clickhouse.sink_narrow import store_narrowing
from livemetrics import metrics
from livemetrics.loop_watch import LoopWatch
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.sink")


class _Waiting:
    """A ClickHouse client whose every call is a declared wait of ``watch``'s thread."""

    def __init__(self, client: Any, watch: LoopWatch):
        self._client, self._watch = client, watch

    def command(self, *args: Any, **kwargs: Any) -> Any:
        with self._watch.waiting("ClickHouse"):
            return self._client.command(*args, **kwargs)

    def insert_arrow(self, *args: Any, **kwargs: Any) -> Any:
        with self._watch.waiting("ClickHouse"):
            return self._client.insert_arrow(*args, **kwargs)


class BatchStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = settings.clickhouse_database
        self.dead_letters = DeadLetters(settings)
        # the two step threads' watches (judged only through the sink thread's waiting_for)
        stale, exit_s = settings.loop_stale_s, settings.loop_stuck_exit_s
        self.prepare_watch = LoopWatch("sink", stale, exit_s, what="the ClickHouse sink's prepare thread")
        self.insert_watch = LoopWatch("sink", stale, exit_s, what="the ClickHouse sink's insert thread")

    def _client(self, watch: LoopWatch) -> _Waiting:
        return _Waiting(get_client(self.settings), watch)

    def _send_dead_letters(self, refused: list) -> None:
        with self.insert_watch.waiting("Kafka"):
            self.dead_letters.send(refused)

    def prepare(self, batch: Batch) -> Prepared:
        """Step one of storing a batch (on the preparing thread), see ``events_json``. A batch the time
        trigger cut (fewer rows than ``sink_batch_rows``: the sink keeps up) is stored in one statement
        instead, parsed inside its insert (``one_statement``): the two steps exist so that parsing the next
        batch overlaps inserting this one, which only a sink behind needs; for a batch every
        ``sink_batch_seconds`` they only cost more CPU: a Native file written and read again and a second
        statement (BENCHMARKS.md, fifteenth session)."""
        self.prepare_watch.beat()
        return events_json.prepare(
            self._client(self.prepare_watch),
            batch.heads,
            batch.values,
            self.settings.clickhouse_embedded,
            one_statement=len(batch.heads) < self.settings.sink_batch_rows,
        )

    def write(self, batch: Batch, prepared: Future) -> int:
        """Step two (on the inserting thread): insert the batch into ClickHouse; return the rows written.
        Rows ClickHouse refuses are narrowed down and dead-lettered; a transient failure is raised."""
        self.insert_watch.beat()
        client, token, rows = self._client(self.insert_watch), batch.token(), 0
        heads, values = batch.heads, batch.values
        sink_replay.record(client, self.db, batch)  # before the insert: a process killed during it (sink_replay)
        try:
            with self.insert_watch.waiting_for(self.prepare_watch):
                events = prepared.result()
            heads, values = events.heads, events.values  # without the values already dead-lettered
            rows += self._insert_events(events, token)
        except Exception as exc:
            if classify(exc) != REFUSED:
                raise
            log.warning("ClickHouse refused a batch of %d rows; narrowing it down: %s", len(heads), exc)
            rows += store_narrowing(heads, values, self._insert_part, self._send_dead_letters)
        if batch.alerts:
            table = alerts_from_messages(batch.alerts)
            if table.num_rows:
                settings = {**INSERT_SETTINGS, "insert_deduplication_token": token + "-alerts"}
                client.insert_arrow(f"{self.db}.payment_errors", table, settings=settings)
                metrics.SINK_ROWS.labels("payment_errors").inc(table.num_rows)
                rows += table.num_rows
        return rows

    def _insert_events(self, events: Prepared, token: str) -> int:
        if not events.heads and not events.refused:
            return 0
        settings = {**EVENTS_INSERT_SETTINGS, "insert_deduplication_token": token}
        with IN_FLIGHT.inserting():  # the session fold stays behind this insert's rows (inserts_in_flight)
            rows = events_json.write(
                self._client(self.insert_watch),
                self.db,
                events,
                settings,
                self.settings.clickhouse_embedded,
                on_refused=self._send_dead_letters,
            )
        metrics.SINK_ROWS.labels("events").inc(rows)
        return rows

    def _insert_part(self, heads: list[bytes], values: list[bytes], token: str) -> int:
        """One part of a refused batch, both steps here (``sink_narrow``)."""
        events = events_json.prepare(self._client(self.insert_watch), heads, values, self.settings.clickhouse_embedded)
        return self._insert_events(events, token)
