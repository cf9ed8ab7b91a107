-- The most common failure causes in the range, with one recent message for each.
SELECT error_code, sum(failed) AS failures,
       round(failures / greatest(sum(failures) OVER (), 1), 4) AS share,
       argMax(message, hour) AS message
FROM {db}.rollup_payments_hourly
WHERE seller_id = {seller_id:String}
  AND failed > 0
  AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
  AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
GROUP BY error_code
ORDER BY failures DESC, error_code
LIMIT 10
