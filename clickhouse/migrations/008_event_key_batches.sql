-- A batch's retry is not filtered out by its own keys (docs/clickhouse.md, "One row per event").
-- An insert can fail half-way: ClickHouse writes the events part and the rows of some views (the keys
-- among them), then another view fails. The sink retries the batch with the same deduplication token,
-- which heals the views that failed only if the retry has the same rows; 007's filter dropped them all
-- (their keys were stored). So each key now records the batch that stored it: `batch`, a hash of the
-- insert's insert_deduplication_token (0 for an insert without one), and the write step keeps a row
-- whose key was stored by the batch being written (queries/sink_events_unseen.sql).
-- EmbeddedRocksDB cannot add a column: the keys move to a new table. Order, as in 005: the new view
-- before the old one goes (no insert is missed), then the old keys are copied (batch 0: written by
-- another batch) and the old table dropped.
-- Re-runnable: every statement is IF [NOT] EXISTS; the empty `event_keys` created below stands in for
-- the old table when a re-run finds it dropped, and copying a key twice stores it once.

CREATE TABLE IF NOT EXISTS {db}.event_key_batches
(
    key       UInt128,
    stored_at DateTime('UTC'),
    batch     UInt64
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY key;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.event_key_batches_mv TO {db}.event_key_batches AS
SELECT reinterpretAsUInt128(sipHash128(seller_id, event_id)) AS key, now('UTC') AS stored_at,
       if(getSetting('insert_deduplication_token') = '', 0, cityHash64(getSetting('insert_deduplication_token'))) AS batch
FROM {db}.events;

DROP VIEW IF EXISTS {db}.event_keys_mv;

CREATE TABLE IF NOT EXISTS {db}.event_keys
(
    key       UInt128,
    stored_at DateTime('UTC')
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY key;

INSERT INTO {db}.event_key_batches (key, stored_at, batch) SELECT key, stored_at, 0 FROM {db}.event_keys;

DROP TABLE IF EXISTS {db}.event_keys;
