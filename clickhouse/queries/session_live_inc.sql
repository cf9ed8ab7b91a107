-- A fragment of session_live.sql (not a report), with a fill (session_live_cached.sql): each of the seller's
-- sessions with session_updates rows labelled since the fold watermark lo in the parts whose newest block
-- is past the fill's ({fill_blocks}: rows inserted since the fill, and any older rows a merge put in such a
-- part), with its state before them (`had_old`, `old_*`): the fill's state (`new_*` of session_live_states)
-- when the fill holds the session, otherwise its state as of lo from session_folded_join (as
-- session_live_join.sql); and with them (`new_*`). A row the fill already took changes nothing here (min,
-- max and the capped union are idempotent), so every row since lo is counted once: in the fill or here.
SELECT u.session AS session,
       f.hit OR (s.version != toDateTime(0, 'UTC') AND (s.version <= lo OR s.had_before = 1)) AS had_old,
       if(f.hit, f.new_start, if(s.version <= lo, s.start_hour, s.before_start_hour)) AS old_start,
       if(f.hit, f.new_furthest, if(s.version <= lo, s.furthest, s.before_furthest)) AS old_furthest,
       if(f.hit, f.new_{dims}, if(s.version <= lo, s.{dims}, s.before_{dims})) AS old_items,
       if(had_old, least(old_start, u.start), u.start) AS new_start,
       greatest(old_furthest, u.furthest) AS new_furthest,
       -- the fold's cap (session_changes.sql, clickhouse/session_cap.py)
       arraySlice(arraySort(arrayDistinct(arrayConcat(old_items, u.items))), 1, {session_max_items}) AS new_items
FROM
(
    SELECT cityHash64({seller_id:String}) AS seller_hash, session, min(first_hour) AS start,
           max(furthest) AS furthest, groupArrayArray({dims}) AS items
    FROM {db}.session_updates
    WHERE seller_id = {seller_id:String} AND inserted >= lo AND {part_block} > {fill_blocks:UInt64}
    GROUP BY session
    SETTINGS max_threads = 1
) AS u
LEFT JOIN
(
    SELECT session, toUInt8(1) AS hit, new_start, new_furthest, new_{dims}
    FROM {db}.session_live_states
    WHERE fill = {fill:UInt64} AND session IN (
        SELECT session FROM {db}.session_updates
        WHERE seller_id = {seller_id:String} AND inserted >= toDateTime({fold_lo:UInt32}, 'UTC')
          AND {part_block} > {fill_blocks:UInt64})
) AS f ON f.session = u.session
ANY LEFT JOIN {db}.session_folded_join AS s ON u.seller_hash = s.seller_hash AND u.session = s.session
