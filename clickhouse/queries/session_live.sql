-- A fragment (not a report), the session reports' live part: how the seller's sessions with log rows
-- (session_updates) inserted since the fold watermark fold_lo change the folded counts of the sessions
-- that started in the range, per item ({kind} = category | offer: the {dims} viewed; furthest: the furthest step '0'..'4'):
-- each such session's contribution with those rows (`new_*`) minus its contribution as of the
-- watermark (`old_*`; had_old = 0 for a session not folded before), as session_deltas.sql computes it for
-- the fold. The fragment live_sessions gives each live session both states: session_live_join.sql (the folded states
-- from the in-memory table session_folded_join) or session_live_pass.sql (from session_folded or
-- session_state), as clickhouse/session_reports.py picks. popular.sql and funnel.sql add them to the folded
-- counts.
WITH toDateTime({fold_lo:UInt32}, 'UTC') AS lo,
     toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end
SELECT c.1 AS item, sum(c.2) AS sessions, sum(c.3) AS checkout_sessions
FROM
(
    SELECT arrayConcat(
               if(new_start >= range_start AND new_start < range_end,
                  arrayMap(x -> (x, toInt64(1), toInt64(new_furthest >= 2)),
                           if('{kind}' = 'furthest', [toString(new_furthest)], new_items)), []),
               if(had_old AND old_start >= range_start AND old_start < range_end,
                  arrayMap(x -> (x, toInt64(-1), -toInt64(old_furthest >= 2)),
                           if('{kind}' = 'furthest', [toString(old_furthest)], old_items)), [])) AS contributions
    FROM ({live_sessions})
)
ARRAY JOIN contributions AS c
GROUP BY item
HAVING sessions != 0 OR checkout_sessions != 0
