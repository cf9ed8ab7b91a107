-- A fragment of session_live.sql (not a report): the folded states of the seller's sessions with
-- session_updates rows since fold_lo, from session_folded (migration 011: session_state's entries sorted
-- for the seller; a session not there was never folded), the newest row of each (older ones wait for
-- merges). For thousands of sessions: the seller's keys are read and probed, and only the sessions found
-- are read in full. identity() keeps the set from picking granules by the primary key: with thousands
-- of random keys every granule has one, and the analysis cost more than it skipped (20 vs 15 ms for
-- 10,000). One RocksDB lookup per session instead cost ~4-10 us each (a compressed block read per
-- level): 60-100 ms for 10,000 late sessions, against ~55 ms for this (BENCHMARKS.md, 2026-12-05).
SELECT session, version AS v, start_hour, furthest, {dims}, had_before, before_start_hour, before_furthest,
       before_{dims}
FROM {db}.session_folded
WHERE seller_hash = cityHash64({seller_id:String}) AND identity(session) IN (
    SELECT session FROM {db}.session_updates
    WHERE seller_id = {seller_id:String} AND inserted >= toDateTime({fold_lo:UInt32}, 'UTC'))
ORDER BY v DESC
LIMIT 1 BY session
