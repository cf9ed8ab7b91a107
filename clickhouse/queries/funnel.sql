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
    SELECT session_id, min(first_at) AS started,
           multiIf(max(purchase) = 1, 4, max(payment) = 1, 3, max(checkout) = 1, 2, max(product) = 1, 1, 0) AS furthest
    FROM {db}.session_facts
    WHERE seller_id = {seller_id:String}
    GROUP BY session_id
    HAVING toStartOfHour(started) >= range_start AND toStartOfHour(started) < range_end
)
