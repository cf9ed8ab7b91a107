-- A fragment of session_live.sql (not a report): the state as of the watermark fold_lo of each of the
-- seller's sessions with session_updates rows since fold_lo that has one, from session_folded
-- (migration 011: session_state's entries sorted for the seller; a session not there was never folded):
-- the newest row of each (older ones wait for merges); a row newer than fold_lo was written by the fold
-- step from fold_lo, and the state it started from is its before_* (had_before = 0: none).
-- For thousands of sessions: the seller's keys are read and probed, and only the sessions found are
-- read in full. identity() keeps the set from picking granules by the primary key: with thousands of
-- random keys every granule has one, and the analysis cost more than it skipped (20 vs 15 ms for
-- 10,000). The rows as of fold_lo and the newer ones are read apart: the pass reads no before_* column
-- (with 10,000 of 20,000 live sessions found among 1 M, the report's CPU time went ~8-15 % down), and
-- the newer rows, only those the step in flight wrote, need no set test (the join drops the rows of
-- sessions without rows since fold_lo). One RocksDB lookup per session instead cost ~4-10 us each (a
-- compressed block read per level): 60-100 ms for 10,000 late sessions (BENCHMARKS.md, 2026-12-05).
SELECT session, had_old, old_start, old_furthest, old_items
FROM
(
    SELECT session, version AS v, toUInt8(1) AS had_old, start_hour AS old_start, furthest AS old_furthest,
           {dims} AS old_items
    FROM {db}.session_folded
    WHERE seller_hash = cityHash64({seller_id:String}) AND version <= toDateTime({fold_lo:UInt32}, 'UTC')
      AND identity(session) IN (
        SELECT session FROM {db}.session_updates
        WHERE seller_id = {seller_id:String} AND inserted >= toDateTime({fold_lo:UInt32}, 'UTC'))
    UNION ALL
    -- no set test: the rows newer than fold_lo are only the ones the step in flight wrote, and the
    -- join drops those of sessions without rows since fold_lo
    SELECT session, version AS v, had_before AS had_old, before_start_hour AS old_start,
           before_furthest AS old_furthest, before_{dims} AS old_items
    FROM {db}.session_folded
    WHERE seller_hash = cityHash64({seller_id:String}) AND version > toDateTime({fold_lo:UInt32}, 'UTC')
)
ORDER BY v DESC
LIMIT 1 BY session
