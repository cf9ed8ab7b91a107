-- Traffic fold (clickhouse/traffic_fold.py, migration 016): the traffic_hours rows of the hours in
-- [fold_lo, fold_hi) that are not folded as the rollup holds them now: each hour's page views, its merged
-- `uniq` state's count, and `shared`: whether a session hash of the hour is also in one of the hours
-- 7k days + j hours away (k = -5..-1, 1..5; j = -3..3), compared with each week's 7 such hours at once
-- (one merged state: |hour| + |week| = |hour ∪ week| exactly when they share no hash and hold at most
-- 65,536 hashes together, where `uniq` stops being exact; above that the hour counts as shared).
-- hourly.sql relies on these bounds (5 weeks, 3 hours): change them together.
WITH
    pending AS ({traffic_pending_hours})  -- traffic_pending_hours.sql: what is not folded as it is now
SELECT seller_id, hour, any(page_views) AS page_views, any(n) AS sessions,
       max(k != 0 AND (n + m > 65536 OR arrayReduce('uniqMerge', [state, week]) != n + m)) AS shared,
       toUInt64(toUnixTimestamp64Micro(now64(6))) AS version
FROM (
    SELECT h.seller_id AS seller_id, h.hour AS hour, h.page_views AS page_views, h.state AS state,
           finalizeAggregation(h.state) AS n, w.k AS k, w.state AS week, finalizeAggregation(w.state) AS m
    FROM (
        SELECT seller_id, hour, sum(page_views) AS page_views, uniqMergeState(sessions) AS state
        FROM {db}.rollup_traffic_hourly
        WHERE hour >= toDateTime({fold_lo:UInt32}, 'UTC') AND hour < toDateTime({fold_hi:UInt32}, 'UTC')
          AND (seller_id, hour) IN pending
        GROUP BY seller_id, hour
    ) AS h
    LEFT JOIN (
        -- each rollup row near a pending hour, merged into the week k of every pending hour it is near
        SELECT seller_id, hour - toIntervalHour(168 * k + j) AS target, k, uniqMergeState(sessions) AS state
        FROM {db}.rollup_traffic_hourly
        ARRAY JOIN [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5] AS k
        ARRAY JOIN [-3, -2, -1, 0, 1, 2, 3] AS j
        WHERE (seller_id, hour) IN (
            SELECT seller_id, hour + toIntervalHour(168 * k + j)
            FROM pending
            ARRAY JOIN [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5] AS k
            ARRAY JOIN [-3, -2, -1, 0, 1, 2, 3] AS j
        )
          AND (seller_id, target) IN pending
        GROUP BY seller_id, target, k
    ) AS w ON w.seller_id = h.seller_id AND w.target = h.hour
)
GROUP BY seller_id, hour
