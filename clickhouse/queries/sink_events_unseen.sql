-- The sink's write step (clickhouse/events_json.py): inserts into events the rows of {rows} (a batch's
-- rows: embedded, the Native file its prepare step wrote; on a server, sink_events.sql's SELECT from the
-- request body) whose (seller_id, event_id) is not stored yet, and of equal keys only the first in the
-- batch (Kafka order). A storefront retrying a request the gateway answered 503 can leave an event twice
-- in Kafka; the rollups count rows, so a copy would count twice.
-- event_keys (migration 007) holds the key of every event stored within dedup_window_hours; it is
-- written by this same insert (event_keys_mv), and the sink writes one batch at a time, so each batch
-- sees the keys of every batch before it. A missing entry reads as zeros (stored_at = 0).
-- {columns}: events' columns, in the order of the INSERT's column list.
INSERT INTO {db}.events ({columns})
SELECT {columns}
FROM ({rows}) AS r
LEFT JOIN {db}.event_keys AS k ON k.key = reinterpretAsUInt128(sipHash128(r.seller_id, r.event_id))
WHERE k.stored_at = 0
LIMIT 1 BY seller_id, event_id
