-- A fragment of session_live.sql (not a report): each of the seller's sessions with log rows since the
-- fold watermark lo, with its state as of lo (`had_old`, `old_*`) and with those rows (`new_*`). This form
-- takes the states from the fragment folded_states (session_states_many.sql: a pass over all the seller's rows of
-- session_folded; session_states_few.sql: session_state by key); session_live_join.sql, the other form,
-- looks them up in the in-memory table session_folded_join (clickhouse/session_reports.py picks).
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
