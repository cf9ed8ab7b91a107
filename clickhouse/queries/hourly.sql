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
