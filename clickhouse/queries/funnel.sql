-- The checkout funnel of the sessions that started in the range: how many reached each step (a later
-- step implies the earlier ones) and how many ended there without purchasing.
WITH toStartOfHour(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')) AS range_start,
     fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC') AS range_end
SELECT
    count() AS visit,
    countIf(furthest >= 1) AS product,
    countIf(furthest >= 2) AS checkout,
    countIf(furthest >= 3) AS payment,
    countIf(furthest >= 4) AS purchase,
    countIf(furthest = 0) AS ended_visit,
    countIf(furthest = 1) AS ended_product,
    countIf(furthest = 2) AS ended_checkout,
    countIf(furthest = 3) AS ended_payment
FROM
(
    -- FINAL merges each session's partial rows on read (cheaper than GROUP BY session_id)
    SELECT multiIf(purchase = 1, 4, payment = 1, 3, checkout = 1, 2, product = 1, 1, 0) AS furthest
    FROM {db}.session_facts FINAL
    WHERE seller_id = {seller_id:String}
      AND toStartOfHour(first_at) >= range_start AND toStartOfHour(first_at) < range_end
)
