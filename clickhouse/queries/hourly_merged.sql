-- The hourly report's cells whose sessions hourly.sql could not add up: the `uniq` states of the listed
-- hours (each such cell's, all of them) merged per cell, with the cell's sums from the same read.
SELECT toDayOfWeek(hour, 0, {tz:String}) AS weekday, toHour(hour, {tz:String}) AS hour_of_day,
       sum(page_views) AS page_views, uniqMerge(sessions) AS sessions, sum(checkouts) AS checkouts,
       sum(purchases) AS purchases
FROM {db}.rollup_traffic_hourly
WHERE seller_id = {seller_id:String}
  AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
  AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
  AND hour IN (SELECT toDateTime(arrayJoin({hours:Array(UInt32)}), 'UTC'))
GROUP BY weekday, hour_of_day
SETTINGS compile_expressions = 0, compile_aggregate_expressions = 0, compile_sort_description = 0
