-- Payment-method preferences and success rates; revenue of succeeded payments per currency.
SELECT method, n_started AS started, n_succeeded AS succeeded, n_failed AS failed,
       if(n_succeeded + n_failed = 0, 0, round(n_succeeded / (n_succeeded + n_failed), 4)) AS success_rate,
       round((n_succeeded + n_failed) / greatest(sum(n_succeeded + n_failed) OVER (), 1), 4) AS share,
       revenue_by_currency AS revenue
FROM
(
    SELECT payment_method AS method, sum(started) AS n_started, sum(succeeded) AS n_succeeded,
           sum(failed) AS n_failed, sumMapIf(map(currency, revenue), revenue > 0) AS revenue_by_currency
    FROM {db}.rollup_payments_hourly
    WHERE seller_id = {seller_id:String}
      AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
      AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
    GROUP BY method
)
ORDER BY succeeded + failed DESC, method
