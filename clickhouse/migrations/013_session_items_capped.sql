-- A session counts for at most {session_max_items} categories and as many offers, the first by name
-- (clickhouse/session_cap.py, docs/clickhouse.md "Reports"): session_updates_mv (005) kept every distinct
-- value of an insert. The fold and the reports' live part cap the merged state the same way, so rows
-- written by the old view (folded or not) are capped when their session is next folded.
-- The new view is created before the old one is dropped, so no insert is missed in between (a row written
-- by both is merely a duplicate: min, max and the union are idempotent, and so is the cap). Re-runnable.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.session_updates_capped_mv TO {db}.session_updates AS
SELECT toStartOfInterval(now(), INTERVAL 10 SECOND) AS inserted, seller_id, cityHash64(session_id) AS session,
       min(toStartOfHour(ts)) AS first_hour,
       max(multiIf(type = 'payment_succeeded', 4, type IN ('payment_started', 'payment_failed'), 3,
                   type = 'checkout_started', 2, type = 'page_view' AND page_type IN ('offer', 'product'), 1, 0)) AS furthest,
       arraySlice(arraySort(groupUniqArrayIf(category, type = 'page_view' AND page_type = 'category' AND category != '')),
                  1, {session_max_items}) AS categories,
       arraySlice(arraySort(groupUniqArrayIf(offer_id, type = 'page_view' AND page_type = 'offer' AND offer_id != '')),
                  1, {session_max_items}) AS offers
FROM {db}.events
WHERE NOT is_bot
GROUP BY seller_id, session;

DROP VIEW IF EXISTS {db}.session_updates_mv;
