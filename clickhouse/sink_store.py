"""Storing one batch of the sink in ClickHouse, in two steps (``events_json``): ``prepare`` on the sink's
preparing thread, ``write`` on its inserting thread. ``write`` tells the two kinds of failure apart
(``sink_errors.classify``): a transient one is raised (the sink waits and retries the batch whole, with
its token), a refusal of the rows is narrowed down (``sink_narrow``), the refused rows going to the
dead-letter topic (``sink_dead_letter``)."""

from __future__ import annotations

import logging
from concurrent.futures import Future

from clickhouse import events_json
from clickhouse.client import EVENTS_INSERT_SETTINGS, INSERT_SETTINGS, get_client
from clickhouse.columns import alerts_from_messages
from clickhouse.events_json import Prepared
from clickhouse.sink_batch import Batch
from clickhouse.sink_dead_letter import DeadLetters
from clickhouse.sink_errors import REFUSED, classify
from clickhouse.sink_narrow import store_narrowing
from livemetrics import metrics
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.sink")


class BatchStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = settings.clickhouse_database
        self.dead_letters = DeadLetters(settings)

    def prepare(self, batch: Batch) -> Prepared:
        """Step one of storing a batch (on the preparing thread), see ``events_json``."""
        return events_json.prepare(
            get_client(self.settings), batch.heads, batch.values, self.settings.clickhouse_embedded
        )

    def write(self, batch: Batch, prepared: Future) -> int:
        """Step two (on the inserting thread): insert the batch into ClickHouse; return the rows written.
        Rows ClickHouse refuses are narrowed down and dead-lettered; a transient failure is raised."""
        client, token, rows = get_client(self.settings), batch.token(), 0
        heads, values = batch.heads, batch.values
        try:
            events = prepared.result()
            heads, values = events.heads, events.values  # without the values already dead-lettered
            rows += self._insert_events(events, token)
        except Exception as exc:
            if classify(exc) != REFUSED:
                raise
            log.warning("ClickHouse refused a batch of %d rows; narrowing it down: %s", len(heads), exc)
            rows += store_narrowing(heads, values, self._insert_part, self.dead_letters.send)
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
        rows = events_json.write(
            get_client(self.settings),
            self.db,
            events,
            settings,
            self.settings.clickhouse_embedded,
            on_refused=self.dead_letters.send,
        )
        metrics.SINK_ROWS.labels("events").inc(rows)
        return rows

    def _insert_part(self, heads: list[bytes], values: list[bytes], token: str) -> int:
        """One part of a refused batch, both steps here (``sink_narrow``)."""
        events = events_json.prepare(get_client(self.settings), heads, values, self.settings.clickhouse_embedded)
        return self._insert_events(events, token)
