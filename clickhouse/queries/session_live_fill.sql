-- A fill of the session reports' shared live part (clickhouse/session_live_cache.py; not a report): every
-- session of the seller with session_updates rows labelled since the fold watermark fold_lo in the parts
-- whose newest block is at most {blocks} (the fragment part_block: a part's newest block number, from its
-- name), with its state as of fold_lo (`old_*`, from the in-memory table session_folded_join, as
-- session_live_join.sql reads it: the cache is used only when that table holds the watermark) and with those
-- rows (`new_*`, capped as the fold caps them), both item kinds at once: categories, offers and funnel
-- share it. session_live_fill_deltas.sql then sums what they add per kind, start hour and item.
INSERT INTO {db}.session_live_states (fill, session, had_old, old_start, old_furthest, old_categories, old_offers,
                                     new_start, new_furthest, new_categories, new_offers)
WITH toDateTime({fold_lo:UInt32}, 'UTC') AS lo
SELECT {fill:UInt64} AS fill_id, u.session AS session,
       s.version != toDateTime(0, 'UTC') AND (s.version <= lo OR s.had_before = 1) AS had_old,
       if(s.version <= lo, s.start_hour, s.before_start_hour) AS old_start,
       if(s.version <= lo, s.furthest, s.before_furthest) AS old_furthest,
       if(s.version <= lo, s.categories, s.before_categories) AS old_categories,
       if(s.version <= lo, s.offers, s.before_offers) AS old_offers,
       if(had_old, least(old_start, u.start), u.start) AS new_start,
       greatest(old_furthest, u.furthest) AS new_furthest,
       -- the fold's cap (session_changes.sql, clickhouse/session_cap.py)
       arraySlice(arraySort(arrayDistinct(arrayConcat(old_categories, u.categories))), 1, {session_max_items})
           AS new_categories,
       arraySlice(arraySort(arrayDistinct(arrayConcat(old_offers, u.offers))), 1, {session_max_items}) AS new_offers
FROM
(
    -- one thread, as in session_live_join.sql
    SELECT cityHash64({seller_id:String}) AS seller_hash, session, min(first_hour) AS start,
           max(furthest) AS furthest, groupArrayArray(categories) AS categories, groupArrayArray(offers) AS offers
    FROM {db}.session_updates
    WHERE seller_id = {seller_id:String} AND inserted >= lo AND {part_block} <= {blocks:UInt64}
    GROUP BY session
    SETTINGS max_threads = 1
) AS u
ANY LEFT JOIN {db}.session_folded_join AS s ON u.seller_hash = s.seller_hash AND u.session = s.session
SETTINGS query_plan_join_swap_table = 'false', compile_expressions = 0, compile_aggregate_expressions = 0,
         compile_sort_description = 0
