-- A fragment of session_live.sql (not a report): the folded states of the seller's sessions with
-- session_updates rows since fold_lo, for a few sessions: their session_state entries, looked up by key
-- (a RocksDB lookup each, ~5-20 us; a missing key is a session never folded). Cheaper than
-- session_states_many.sql's pass over the seller's keys up to about a hundred sessions (5 vs 12 ms for
-- 35). An entry is what session_folded's newest row of the session holds (migration 011).
SELECT toUInt64(bitAnd(key, 0xFFFFFFFFFFFFFFFF)) AS session, version AS v, start_hour, furthest, {dims}, had_before,
       before_start_hour, before_furthest, before_{dims}
FROM {db}.session_state
WHERE key IN (
    SELECT bitOr(bitShiftLeft(toUInt128(cityHash64({seller_id:String})), 64), toUInt128(session))
    FROM {db}.session_updates
    WHERE seller_id = {seller_id:String} AND inserted >= toDateTime({fold_lo:UInt32}, 'UTC'))
