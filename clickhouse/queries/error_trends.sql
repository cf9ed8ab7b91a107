-- Payment failures per day (in the seller's time zone) and error code: each day's {max_values} codes with
-- the most failures, and one row with the code '~other' for the rest of that day's failures. Codes are
-- free text that anyone with the shop's public browser key can invent per event: the report stays this
-- size whatever is sent, and the day's total is unchanged.
SELECT day, code AS error_code, sum(n) AS failures
FROM
(
    SELECT day, if(row_number() OVER (PARTITION BY day ORDER BY n DESC, error_code) <= {max_values:UInt32},
                   error_code, '~other') AS code, n
    FROM
    (
        SELECT toString(toDate(hour, {tz:String})) AS day, error_code, sum(failed) AS n
        FROM {db}.rollup_payments_hourly
        WHERE seller_id = {seller_id:String}
          AND failed > 0
          AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
          AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
        GROUP BY day, error_code
    )
)
GROUP BY day, code
ORDER BY day, failures DESC, error_code
