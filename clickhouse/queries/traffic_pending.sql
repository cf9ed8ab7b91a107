-- The hours of rollup_traffic_hourly in [{since}, {until}) whose newest traffic_hours row (migration 016) is
-- missing, or counted other page views than the rollup holds now and the hour is before {settled} (no
-- live event reaches it any more), per hour: what a traffic fold has to (re)fold
-- (clickhouse/traffic_fold.py). Sums only: no `uniq` state is read.
SELECT toUInt32(hour) AS hour, count() AS sellers
FROM (
    SELECT seller_id, hour, sum(page_views) AS page_views
    FROM {db}.rollup_traffic_hourly
    WHERE hour >= toDateTime({since:UInt32}, 'UTC') AND hour < toDateTime({until:UInt32}, 'UTC')
    GROUP BY seller_id, hour
) AS r
LEFT JOIN (
    SELECT seller_id, hour, argMax(page_views, version) AS folded_views, 1 AS found
    FROM {db}.traffic_hours
    WHERE hour >= toDateTime({since:UInt32}, 'UTC') AND hour < toDateTime({until:UInt32}, 'UTC')
    GROUP BY seller_id, hour
) AS f USING (seller_id, hour)
WHERE NOT found OR (folded_views != page_views AND hour < toDateTime({settled:UInt32}, 'UTC'))
GROUP BY hour
ORDER BY hour
