-- How many sellers' hours a traffic fold has to (re)fold, per hour of [{fold_lo}, {fold_hi})
-- (clickhouse/traffic_fold.py; which ones: traffic_pending_hours.sql, put in where a query names it in braces).
SELECT toUInt32(hour) AS hour, count() AS sellers
FROM ({traffic_pending_hours})
GROUP BY hour
ORDER BY hour
