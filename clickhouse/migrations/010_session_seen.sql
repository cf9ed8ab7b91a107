-- Which sessions have a session_state entry, as a sorted column the session reports can scan
-- (docs/clickhouse.md, "Reports"). A report needs the folded state of every session with rows since
-- the fold's watermark; most of them are new, and a key-value lookup of a key that is not there was
-- the costly part (RocksDB reads a block of every level for it): a report first keeps the keys found
-- here and looks up only those.
-- Invariant the reports rely on: every key with a session_state entry is here. The fold inserts the
-- keys of the sessions it sees for the first time after writing their entries and before committing
-- its step's watermark (clickhouse/session_fold.py); purge_states deletes a key only after its entry,
-- with the same cutoff. start_hour: the session's start when it was first folded (later events can
-- only move it earlier, so a row never expires before its entry). A key may be here twice (a step run
-- again, the copy below run again): merges keep one, and the reports only ask whether it is here.
-- seller_hash and session: the high and low halves of session_state's key. Two UInt64 rather than the
-- UInt128 key: a report's `session IN (...)` over a seller's million sessions took ~2/3 of the time.
CREATE TABLE IF NOT EXISTS {db}.session_seen
(
    seller_hash  UInt64,
    session      UInt64,
    start_hour   DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (seller_hash, session);

-- The entries folded before this migration (the fold does not run while migrations are applied: the
-- sink migrates before it starts its fold thread; with a ClickHouse server, stop the sinks first).
INSERT INTO {db}.session_seen (seller_hash, session, start_hour)
SELECT toUInt64(bitShiftRight(key, 64)), toUInt64(bitAnd(key, 0xFFFFFFFFFFFFFFFF)), start_hour
FROM {db}.session_state;
