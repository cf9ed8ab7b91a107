-- The seller's sessions with log rows (session_updates) inserted since the fold watermark fold_lo: each
-- with its state as of the watermark (`old_*` from session_state; had_old = 0 for a session not folded
-- before) and what the rows since say (`start`, `furthest`, `items`: the {dims} viewed), start hours as
-- epoch seconds. clickhouse/session_reports.py adds how they change the folded counts.
WITH toDateTime({fold_lo:UInt32}, 'UTC') AS lo
SELECT s.version > 0 AND (s.version <= lo OR s.had_before = 1) AS had_old,
       -- an entry holds the state as of `version`, which is at most lo unless the fold step from lo has
       -- already written it: then the state it started from is in before_* (missing: zeros)
       toUInt32(if(s.version <= lo, s.start_hour, s.before_start_hour)) AS old_start,
       if(s.version <= lo, s.furthest, s.before_furthest) AS old_furthest,
       if(s.version <= lo, s.{dims}, s.before_{dims}) AS old_items,
       toUInt32(u.start) AS start, u.furthest AS furthest, u.items AS items
FROM
(
    SELECT bitOr(bitShiftLeft(toUInt128(cityHash64(seller_id)), 64), toUInt128(session)) AS key,
           min(first_hour) AS start, max(furthest) AS furthest, groupArrayArray({dims}) AS items
    FROM {db}.session_updates
    WHERE seller_id = {seller_id:String} AND inserted >= lo
    GROUP BY key
) AS u
LEFT JOIN {db}.session_state AS s ON s.key = u.key
