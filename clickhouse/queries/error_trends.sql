-- Payment failures per day (in the seller's time zone) and error code.
SELECT toString(toDate(hour, {tz:String})) AS day, error_code, sum(failed) AS failures
FROM {db}.rollup_payments_hourly
WHERE seller_id = {seller_id:String}
  AND failed > 0
  AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
  AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
GROUP BY day, error_code
ORDER BY day, failures DESC, error_code
