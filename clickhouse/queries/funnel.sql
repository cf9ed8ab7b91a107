-- The checkout funnel, folded part: of the sessions that started in the range, how many reached each
-- step as their furthest (0 visit .. 4 purchase), from session_sums up to the fold watermark
-- (clickhouse/session_reports.py adds the sessions changed since; docs/clickhouse.md, "Reports").
SELECT toUInt8(item) AS furthest, sum(sessions) AS sessions
FROM {db}.session_sums
WHERE seller_id = {seller_id:String} AND kind = 'furthest'
  AND start_hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
  AND start_hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
GROUP BY furthest
