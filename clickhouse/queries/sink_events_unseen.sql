-- The sink's write step (clickhouse/events_json.py): inserts into events the rows of {rows} (a batch's
-- rows: embedded, the Native file its prepare step wrote; on a server, sink_events.sql's SELECT from the
-- request body) whose (seller_id, event_id) is not stored yet, and of equal keys only the first in the
-- batch (Kafka order). A storefront retrying a request the gateway answered 503 can leave an event twice
-- in Kafka; the rollups count rows, so a copy would count twice.
-- event_key_batches (migrations 007, 008) holds the key of every event stored within dedup_window_hours
-- and the batch that stored it (a hash of its insert_deduplication_token, 0 for none); it is written by
-- this same insert (event_key_batches_mv), and the sink writes one batch at a time, so each batch sees
-- the keys of every batch before it. A missing entry reads as zeros (stored_at = 0).
-- A key stored by this batch itself is kept: an earlier attempt of the batch that failed half-way (the
-- events part and the keys written, another view failed) is retried with the same rows and token, so
-- ClickHouse drops the events copy and writes the views that failed (migration 008).
-- {columns}: events' columns, in the order of the INSERT's column list.
INSERT INTO {db}.events ({columns})
SELECT {columns}
FROM ({rows}) AS r
LEFT JOIN {db}.event_key_batches AS k ON k.key = reinterpretAsUInt128(sipHash128(r.seller_id, r.event_id))
WHERE k.stored_at = 0 OR (k.batch != 0 AND k.batch = cityHash64(getSetting('insert_deduplication_token')))
LIMIT 1 BY seller_id, event_id
