-- Fold step, second insert (clickhouse/session_fold.py): what the log rows inserted in
-- [fold_lo, fold_hi) change in session_sums, at their start hour (kinds 'furthest', 'category', 'offer') and
-- again at its UTC day (kinds '<kind>_day', which the reports read for the whole days of a range: migration
-- 018), and the row saying they are folded. One block, one part: the day rows become visible with the hours'.
SELECT seller_id, at.1 AS at_kind, at.2 AS at_hour, item, sum(sessions_delta) AS sessions,
       sum(checkout_sessions_delta) AS checkout_sessions, toDateTime(0, 'UTC') AS folded_to
FROM ({session_deltas})
ARRAY JOIN [(toString(kind), start_hour), (concat(toString(kind), '_day'), toStartOfDay(start_hour))] AS at
GROUP BY seller_id, at_kind, at_hour, item
HAVING sessions != 0 OR checkout_sessions != 0
UNION ALL
SELECT '', '', toDateTime(0, 'UTC'), '', 0, 0, toDateTime({fold_hi:UInt32}, 'UTC')
