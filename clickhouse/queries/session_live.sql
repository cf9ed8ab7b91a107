-- A fragment (not a report), the session reports' live part: how the seller's sessions with log rows
-- (session_updates) inserted since the fold watermark fold_lo change the folded counts of the sessions
-- that started in the range, per item ({kind} = category | offer: the {dims} viewed; furthest: the furthest step '0'..'4'):
-- each such session's contribution with those rows (`new_*`) minus its contribution as of the
-- watermark (`old_*`, from session_folded or session_state; had_old = 0 for a session not folded before), as
-- session_deltas.sql computes it for the fold. popular.sql and funnel.sql add them to the folded
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
    FROM
    (
        -- u on the right: the hash table is built from the live sessions, and the states (every row of
        -- the seller's in session_states_many.sql) probe it; testing them against a set of the live
        -- sessions first and joining the few found cost ~10-20 % more CPU in all (BENCHMARKS.md,
        -- 2026-12-05, third round). popular.sql and funnel.sql keep the planner from swapping the sides.
        SELECT u.session AS session, s.v AS v,
               s.had_old AS had_old, s.old_start AS old_start, s.old_furthest AS old_furthest, s.old_items AS old_items,
               if(had_old, least(old_start, u.start), u.start) AS new_start,
               greatest(old_furthest, u.furthest) AS new_furthest,
               -- the fold's cap (session_changes.sql, clickhouse/session_cap.py)
               arraySlice(arraySort(arrayDistinct(arrayConcat(old_items, u.items))), 1, {session_max_items}) AS new_items
        FROM
        (
            -- the state as of lo of the seller's sessions that have one (session_states_many.sql: all
            -- of them; session_states_few.sql: those with rows since lo), as
            -- clickhouse/session_reports.py picks; a live session without one gets the defaults:
            -- had_old 0, no items
            {folded_states}
        ) AS s
        RIGHT JOIN
        (
            -- one seller: grouped by the session hash alone (session_state's key is the seller's hash
            -- and this one, and the states joined are all this seller's)
            SELECT session, min(first_hour) AS start, max(furthest) AS furthest, groupArrayArray({dims}) AS items
            FROM {db}.session_updates
            WHERE seller_id = {seller_id:String} AND inserted >= lo
            GROUP BY session
            -- one thread: with two, each grouped about half of the rows and merging the two hash tables of
            -- arrays cost more than the grouping (20,035 live sessions: 14 ms of CPU, 10 of wall time,
            -- against 5 and 5; BENCHMARKS.md, 2026-12-05, fourth round). A subquery's settings reach only
            -- its own subqueries, and this one has none: the pass over session_folded keeps both threads
            SETTINGS max_threads = 1
        ) AS u ON s.session = u.session
        -- the newest of a session's rows (session_folded keeps older ones until merges)
        ORDER BY v DESC
        LIMIT 1 BY session
    )
)
ARRAY JOIN contributions AS c
GROUP BY item
HAVING sessions != 0 OR checkout_sessions != 0
