-- Fold step, second insert (clickhouse/session_fold.py): what the log rows inserted in
-- [fold_lo, fold_hi) change in session_sums, and the row saying they are folded. One block, one part.
SELECT seller_id, kind, start_hour, item, sum(sessions_delta) AS sessions,
       sum(checkout_sessions_delta) AS checkout_sessions, toDateTime(0, 'UTC') AS folded_to
FROM ({session_deltas})
GROUP BY seller_id, kind, start_hour, item
HAVING sessions != 0 OR checkout_sessions != 0
UNION ALL
SELECT '', '', toDateTime(0, 'UTC'), '', 0, 0, toDateTime({fold_hi:UInt32}, 'UTC')
