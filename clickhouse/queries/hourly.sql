-- Hourly activity patterns: hour of day x weekday in the seller's time zone (weekday 1 = Monday).
SELECT
    toDayOfWeek(hour, 0, {tz:String}) AS weekday,
    toHour(hour, {tz:String}) AS hour_of_day,
    sum(page_views) AS page_views,
    uniqMerge(sessions) AS sessions,
    sum(checkouts) AS checkouts,
    sum(purchases) AS purchases
FROM {db}.rollup_traffic_hourly
WHERE seller_id = {seller_id:String}
  AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
  AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
GROUP BY weekday, hour_of_day
ORDER BY weekday, hour_of_day
-- no JIT: compiling its expressions took up to ~100 ms inside the 3rd run after a process start (a p95
-- tail in BENCHMARKS.md) and saved nothing measurable afterwards
SETTINGS compile_expressions = 0, compile_aggregate_expressions = 0, compile_sort_description = 0
