-- The (seller, hour) pairs of rollup_traffic_hourly in [{fold_lo}, {fold_hi}) whose newest traffic_hours row
-- (migration 016) is missing, or counted other page views than the rollup holds now and the hour is before
-- {settled} (no live event reaches it any more): what a traffic fold has to (re)fold. Sums only: no `uniq`
-- state is read. clickhouse/traffic_fold.py puts it into traffic_pending.sql (counted per hour) and
-- traffic_fold.sql (folded), where each names it in braces.
SELECT seller_id, hour
FROM (
    SELECT seller_id, hour, sum(page_views) AS page_views
    FROM {db}.rollup_traffic_hourly
    WHERE hour >= toDateTime({fold_lo:UInt32}, 'UTC') AND hour < toDateTime({fold_hi:UInt32}, 'UTC')
    GROUP BY seller_id, hour
) AS r
LEFT JOIN (
    SELECT seller_id, hour, argMax(page_views, version) AS folded_views, 1 AS found
    FROM {db}.traffic_hours
    WHERE hour >= toDateTime({fold_lo:UInt32}, 'UTC') AND hour < toDateTime({fold_hi:UInt32}, 'UTC')
    GROUP BY seller_id, hour
) AS f USING (seller_id, hour)
WHERE NOT found OR (folded_views != page_views AND hour < toDateTime({settled:UInt32}, 'UTC'))
