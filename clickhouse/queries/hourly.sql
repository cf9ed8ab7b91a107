-- Hourly activity patterns: hour of day x weekday in the seller's time zone (weekday 1 = Monday), from the
-- rollup's sums. A cell's sessions are its hours' `uniq` states merged; reading ~720 states a month back
-- into hash sets is nearly all the report's time, so here they are the sum of the hours' counts folded
-- into traffic_hours (migration 016, clickhouse/traffic_fold.py) wherever that is the same number: where
-- the hours' hash sets are disjoint and hold at most 65,536 hashes together (`uniq` is exact up to there):
--   every hour of the cell is folded as the rollup holds it now (same page views: no page view, hence no
--   session, came since) and shares no hash with the hours 1-5 weeks (+-3 h) away (`shared`, checked by
--   the fold); the cell's hours lie on different local days (a DST fall-back repeats an hour of the day:
--   two hours of one day, which the fold does not compare), within 5 weeks + 3 h, and the zone's offset
--   moves by at most 3 h among them, so any two are 7k days +- 3 h apart, k <= 5 (the pairs the fold
--   checked; traffic_fold.sql); and the counts add up to at most 65,536.
-- For every other cell (hours not folded or late, a DST fall-back, long ranges, big sellers) `merge_hours`
-- lists its hours, whose states hourly_merged.sql merges (clickhouse/query.py); else it is empty.
SELECT weekday, hour_of_day, sum(page_views) AS page_views, sum(folded) AS sessions, sum(checkouts) AS checkouts,
       sum(purchases) AS purchases,
       if(min(clean) = 1 AND uniqExact(toDate(hour, {tz:String})) = count()
          AND max(hour) - min(hour) <= 35 * 86400 + 3 * 3600
          AND max(offset) - min(offset) <= 3 * 3600 AND sessions <= 65536,
          [], groupArray(toUInt32(hour))) AS merge_hours
FROM (
    SELECT hour, toDayOfWeek(hour, 0, {tz:String}) AS weekday, toHour(hour, {tz:String}) AS hour_of_day,
           timeZoneOffset(toTimeZone(hour, {tz:String})) AS offset, page_views, checkouts, purchases,
           tupleElement(t, 2) AS folded, found AND tupleElement(t, 1) = page_views AND tupleElement(t, 3) = 0 AS clean
    FROM (
        SELECT hour, sum(page_views) AS page_views, sum(checkouts) AS checkouts, sum(purchases) AS purchases
        FROM {db}.rollup_traffic_hourly
        WHERE seller_id = {seller_id:String}
          AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
          AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
        GROUP BY hour
    ) AS r
    LEFT JOIN (
        SELECT hour, argMax((page_views, sessions, shared), version) AS t, 1 AS found
        FROM {db}.traffic_hours
        WHERE seller_id = {seller_id:String}
          AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
          AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
        GROUP BY hour
    ) AS f USING (hour)
)
GROUP BY weekday, hour_of_day
ORDER BY weekday, hour_of_day
-- no JIT: compiling its expressions took up to ~100 ms inside the 3rd run after a process start (a p95
-- tail in BENCHMARKS.md) and saved nothing measurable afterwards
SETTINGS compile_expressions = 0, compile_aggregate_expressions = 0, compile_sort_description = 0
