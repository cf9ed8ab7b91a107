-- A fragment of session_live.sql (not a report): the state as of the watermark fold_lo of each of the
-- seller's sessions that has one, from session_folded (migration 011: session_state's entries sorted for
-- the seller; a session not there was never folded): every row, older ones of a session included (they
-- wait for merges; session_live.sql takes the newest one of each live session). A row newer than fold_lo
-- was written by the fold step from fold_lo, and the state it started from is its before_* (had_before
-- = 0: none). For thousands of live sessions: all the seller's rows are read and probe the live
-- sessions' hash table in session_live.sql. With 10,000 of 20,000 live sessions found among 1 M, this
-- cost ~10-20 % less CPU in all than testing the keys against a set of the live sessions first
-- (identity(session) IN ...: ~15 ms for 1 M keys) and then reading the arrays of every granule (every
-- one has a live session) to keep the few rows found (BENCHMARKS.md, 2026-12-05, third round). The
-- rows as of fold_lo and the newer ones (one step's) are read apart, so that the first read has no
-- before_* column. One RocksDB lookup per session instead cost ~4-10 us each (a compressed block read
-- per level): 60-100 ms for 10,000 late sessions.
SELECT session, version AS v, toUInt8(1) AS had_old, start_hour AS old_start, furthest AS old_furthest,
       {dims} AS old_items
FROM {db}.session_folded
WHERE seller_hash = cityHash64({seller_id:String}) AND version <= toDateTime({fold_lo:UInt32}, 'UTC')
UNION ALL
SELECT session, version AS v, had_before AS had_old, before_start_hour AS old_start,
       before_furthest AS old_furthest, before_{dims} AS old_items
FROM {db}.session_folded
WHERE seller_hash = cityHash64({seller_id:String}) AND version > toDateTime({fold_lo:UInt32}, 'UTC')
