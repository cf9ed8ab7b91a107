-- Payment-method preferences and success rates; revenue of succeeded payments per currency. The
-- {max_values} methods with the most attempts (succeeded + failed), and one row with the method '~other'
-- (no method can spell it) for the rest: anyone with the shop's public browser key can invent a method
-- per event, and the report stays this size whatever is sent.
SELECT method, n_started AS started, n_succeeded AS succeeded, n_failed AS failed,
       if(n_succeeded + n_failed = 0, 0, round(n_succeeded / (n_succeeded + n_failed), 4)) AS success_rate,
       round((n_succeeded + n_failed) / greatest(sum(n_succeeded + n_failed) OVER (), 1), 4) AS share,
       revenue_by_currency AS revenue
FROM
(
    SELECT kept AS method, sum(s) AS n_started, sum(ok) AS n_succeeded, sum(ko) AS n_failed,
           sumMap(rev) AS revenue_by_currency
    FROM
    (
        SELECT if(row_number() OVER (ORDER BY ok + ko DESC, s DESC, method) <= {max_values:UInt32},
                  method, '~other') AS kept, s, ok, ko, rev
        FROM
        (
            SELECT payment_method AS method, sum(started) AS s, sum(succeeded) AS ok, sum(failed) AS ko,
                   sumMapIf(map(currency, revenue), revenue > 0) AS rev
            FROM {db}.rollup_payments_hourly
            WHERE seller_id = {seller_id:String}
              AND hour >= toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
              AND hour < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
            GROUP BY method
        )
    )
    GROUP BY kept
)
ORDER BY succeeded + failed DESC, method
