-- Each (seller, event_id) is stored once (docs/clickhouse.md, "Sink", "One row per event").
-- A storefront retries a request the gateway answered 503, and the first attempt may still have reached
-- Kafka: the raw topics can hold the same event twice. event_keys remembers the key of every event
-- stored in events (written by the same insert, through event_keys_mv); the sink's write step inserts
-- only rows whose key it does not hold (clickhouse/queries/sink_events_unseen.sql).
-- key: sipHash128(seller_id, event_id), so that one seller reusing another's event ids suppresses nothing
-- of theirs. stored_at: when the key was stored; the sink's fold thread deletes keys older than
-- dedup_window_hours once a day (clickhouse/event_keys.py). A key-value table: the sink looks up only
-- the keys of the batch it writes.
-- Events stored before this migration have no key: a copy of one of them arriving now would be stored
-- (the window starts with the migration).

CREATE TABLE IF NOT EXISTS {db}.event_keys
(
    key       UInt128,
    stored_at DateTime('UTC')
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY key;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.event_keys_mv TO {db}.event_keys AS
SELECT reinterpretAsUInt128(sipHash128(seller_id, event_id)) AS key, now('UTC') AS stored_at
FROM {db}.events;
