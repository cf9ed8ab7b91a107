-- The batch the sink is about to store (clickhouse/sink_replay.py): its deduplication token and the offset
-- range of each partition, written before its insert. An insert into events is not atomic across the tables
-- its views write: a process killed between them left a batch's rows in events without its event keys and
-- sink_offsets rows (make chaos, 2026-12-07: 2,700 events stored twice). At its next assignment the sink
-- finds such a batch (not counted in sink_offsets, right after what is) and stores it again with the same
-- ranges and so the same token: ClickHouse drops what each table already has and writes what it missed.
CREATE TABLE IF NOT EXISTS {db}.sink_batches
(
    at     DateTime64(3, 'UTC') DEFAULT now64(3),
    token  String,
    ranges String -- JSON: [[topic, partition, first offset, last offset], ...]
)
ENGINE = MergeTree
ORDER BY at
TTL toDateTime(at) + INTERVAL 1 DAY;
