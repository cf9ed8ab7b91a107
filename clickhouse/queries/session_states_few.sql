-- A fragment of session_live.sql (not a report): the state as of the watermark fold_lo of each of the
-- seller's sessions with session_updates rows since fold_lo that has one, for a few sessions: their
-- session_state entries, looked up by key (a RocksDB lookup each, ~5-20 us; a missing key is a session
-- never folded). An entry newer than fold_lo was written by the fold step from fold_lo, and the state it
-- started from is its before_* (had_before = 0: none). Cheaper than session_states_many.sql's pass over
-- all the seller's rows up to about a hundred sessions (~5 ms for 35; the pass over the keys alone was
-- ~12). An entry is what session_folded's newest row of the session holds (migration 011).
WITH toDateTime({fold_lo:UInt32}, 'UTC') AS lo
SELECT toUInt64(bitAnd(key, 0xFFFFFFFFFFFFFFFF)) AS session, version AS v,
       if(version <= lo, 1, had_before) AS had_old,
       if(version <= lo, start_hour, before_start_hour) AS old_start,
       if(version <= lo, furthest, before_furthest) AS old_furthest,
       if(version <= lo, {dims}, before_{dims}) AS old_items
FROM {db}.session_state
WHERE key IN (
    SELECT bitOr(bitShiftLeft(toUInt128(cityHash64({seller_id:String})), 64), toUInt128(session))
    FROM {db}.session_updates
    WHERE seller_id = {seller_id:String} AND inserted >= toDateTime({fold_lo:UInt32}, 'UTC'))
