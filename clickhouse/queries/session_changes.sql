-- A fragment (not a report): every session with log rows (session_updates) inserted in
-- [fold_lo, fold_hi) whose state they change, with its state before them (`old_*`, from session_state
-- as of fold_lo; had_old = 0 for a session not seen before) and after them (`new_*`).
-- {scope} limits the sellers (`seller_id = {seller_id:String}`, or `1` for all).
WITH toDateTime({fold_lo:UInt32}, 'UTC') AS lo, toDateTime({fold_hi:UInt32}, 'UTC') AS hi
SELECT key, seller_id, had_old, old_start, old_furthest, old_categories, old_offers,
       new_start, new_furthest, new_categories, new_offers
FROM
(
    SELECT u.key AS key, u.seller AS seller_id,
           -- an entry holds the state as of `version`, which is at most lo unless the fold step from lo
           -- has already written it: then the state it started from is in before_* (a missing entry
           -- reads as zeros: version 0)
           s.version > 0 AND (s.version <= lo OR s.had_before = 1) AS had_old,
           if(s.version <= lo, s.start_hour, s.before_start_hour) AS old_start,
           if(s.version <= lo, s.furthest, s.before_furthest) AS old_furthest,
           if(s.version <= lo, s.categories, s.before_categories) AS old_categories,
           if(s.version <= lo, s.offers, s.before_offers) AS old_offers,
           if(had_old, least(old_start, u.start), u.start) AS new_start,
           greatest(old_furthest, u.furthest) AS new_furthest,
           -- a session counts for its first {session_max_items} categories and offers by name
           -- (clickhouse/session_cap.py): the first of the union of the (capped) state and the new rows
           arraySlice(arraySort(arrayDistinct(arrayConcat(old_categories, u.categories))), 1, {session_max_items})
               AS new_categories,
           arraySlice(arraySort(arrayDistinct(arrayConcat(old_offers, u.offers))), 1, {session_max_items}) AS new_offers
    FROM
    (
        -- one fixed-size key, the seller's hash and the session hash (also session_state's key):
        -- grouping by the LowCardinality seller_id and the session together was several times slower
        SELECT bitOr(bitShiftLeft(toUInt128(cityHash64(seller_id)), 64), toUInt128(session)) AS key,
               any(seller_id) AS seller, min(first_hour) AS start, max(furthest) AS furthest,
               groupArrayArray(categories) AS categories, groupArrayArray(offers) AS offers
        FROM {db}.session_updates
        WHERE {scope} AND inserted >= lo AND inserted < hi
        GROUP BY key
    ) AS u
    LEFT JOIN {db}.session_state AS s ON s.key = u.key
)
-- unchanged: the same start, step and items (the capped union is sorted; a state written before the
-- cap, migration 013, may be in any order, and a state over the cap is rewritten capped)
WHERE NOT (had_old AND new_start = old_start AND new_furthest = old_furthest
           AND new_categories = arraySort(old_categories) AND new_offers = arraySort(old_offers))
