-- The checkout funnel of the sessions that started in the range: how many reached each step (a later
-- step implies the earlier ones) and how many ended there without purchasing. Session counts: the
-- folded sums up to the fold watermark plus what the rows inserted since change
-- (clickhouse/session_fold.py; docs/clickhouse.md, "Reports").
WITH toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end
SELECT
    sum(n) AS visit,
    sumIf(n, furthest >= 1) AS product,
    sumIf(n, furthest >= 2) AS checkout,
    sumIf(n, furthest >= 3) AS payment,
    sumIf(n, furthest >= 4) AS purchase,
    sumIf(n, furthest = 0) AS ended_visit,
    sumIf(n, furthest = 1) AS ended_product,
    sumIf(n, furthest = 2) AS ended_checkout,
    sumIf(n, furthest = 3) AS ended_payment
FROM
(
    -- sessions per furthest step ('0' visit .. '4' purchase)
    SELECT toUInt8(item) AS furthest, sum(sessions) AS n
    FROM
    (
        SELECT item, sessions
        FROM {db}.session_sums
        WHERE seller_id = {seller_id:String} AND kind = 'furthest'
          AND start_hour >= range_start AND start_hour < range_end
        UNION ALL
        SELECT item, sessions_delta
        FROM ({session_deltas})
        WHERE kind = 'furthest' AND start_hour >= range_start AND start_hour < range_end
    )
    GROUP BY furthest
)
