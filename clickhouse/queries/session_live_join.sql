-- A fragment of session_live.sql (not a report): each of the seller's sessions with log rows since the
-- fold watermark lo, with its state as of lo (`had_old`, `old_*`) and with those rows (`new_*`), the folded
-- states looked up in the in-memory table session_folded_join (migration 014: a hash table by seller and
-- session hash holding what session_folded's newest row of every session holds), for the live sessions
-- only: no pass over the seller's folded rows, one read of session_updates. clickhouse/session_reports.py
-- picks this form only when the table's marker says it holds every entry up to lo. An entry newer than lo
-- was written by the fold step from lo, and the state it started from is its before_* (had_before = 0:
-- none); a session it does not hold (version 0) was never folded: had_old 0, no items.
SELECT u.session AS session, s.version AS v,
       s.version != toDateTime(0, 'UTC') AND (s.version <= lo OR s.had_before = 1) AS had_old,
       if(s.version <= lo, s.start_hour, s.before_start_hour) AS old_start,
       if(s.version <= lo, s.furthest, s.before_furthest) AS old_furthest,
       if(s.version <= lo, s.{dims}, s.before_{dims}) AS old_items,
       if(had_old, least(old_start, u.start), u.start) AS new_start,
       greatest(old_furthest, u.furthest) AS new_furthest,
       -- the fold's cap (session_changes.sql, clickhouse/session_cap.py)
       arraySlice(arraySort(arrayDistinct(arrayConcat(old_items, u.items))), 1, {session_max_items}) AS new_items
FROM
(
    -- grouped by the session hash alone, on one thread (session_live_pass.sql says why)
    SELECT cityHash64({seller_id:String}) AS seller_hash, session, min(first_hour) AS start,
           max(furthest) AS furthest, groupArrayArray({dims}) AS items
    FROM {db}.session_updates
    WHERE seller_id = {seller_id:String} AND inserted >= lo
    GROUP BY session
    SETTINGS max_threads = 1
) AS u
ANY LEFT JOIN {db}.session_folded_join AS s ON u.seller_hash = s.seller_hash AND u.session = s.session
