-- A fragment (not a report): how the log rows inserted in [fold_lo, fold_hi) change the session counts
-- of session_sums, as rows (seller_id, start_hour, kind, item, sessions_delta, checkout_sessions_delta):
-- every changed session's contribution after them minus its contribution before them. A session
-- contributes, at the hour it started, one session to its furthest step (kind 'furthest'), and one
-- session, plus one checkout session if it reached checkout, to each category and offer it viewed.
SELECT seller_id, c.1 AS start_hour, c.2 AS kind, c.3 AS item, c.4 AS sessions_delta, c.5 AS checkout_sessions_delta
FROM ({session_changes})
ARRAY JOIN arrayConcat(
    [(new_start, 'furthest', toString(new_furthest), toInt64(1), toInt64(0))],
    arrayMap(x -> (new_start, 'category', x, toInt64(1), toInt64(new_furthest >= 2)), new_categories),
    arrayMap(x -> (new_start, 'offer', x, toInt64(1), toInt64(new_furthest >= 2)), new_offers),
    if(had_old, arrayConcat(
        [(old_start, 'furthest', toString(old_furthest), toInt64(-1), toInt64(0))],
        arrayMap(x -> (old_start, 'category', x, toInt64(-1), -toInt64(old_furthest >= 2)), old_categories),
        arrayMap(x -> (old_start, 'offer', x, toInt64(-1), -toInt64(old_furthest >= 2)), old_offers)), [])
) AS c
