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
    -- a session may be in several partial rows (one per insert that saw it): merge them, then keep
    -- the sessions whose first hour is in the range (GROUP BY measured faster than FINAL here)
    SELECT min(first_hour) AS start_hour, max(furthest) AS furthest
    FROM {db}.session_facts
    WHERE seller_id = {seller_id:String}
    GROUP BY session
    HAVING start_hour >= range_start AND start_hour < range_end
)
