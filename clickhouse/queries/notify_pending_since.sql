-- Deliveries still owed whose row changed after {since} (a row version, ns): the notifier's regular look
-- for redeliveries stored through other API replicas (api/notify/service.py). Cheaper than notify_pending:
-- the version column alone picks the few keys changed lately, and only those are read whole and merged.
SELECT seller_id, delivery_id, alert_id, alert_kind, channel_id, target, body, status, attempts, last_error,
       toUnixTimestamp64Milli(created_at) AS created_ms, toUnixTimestamp64Milli(next_at) AS next_ms,
       version
FROM {db}.notification_deliveries FINAL
WHERE (seller_id, delivery_id) IN (
    SELECT seller_id, delivery_id FROM {db}.notification_deliveries WHERE version > {since:UInt64}
)
  AND status = 'pending'
ORDER BY created_at
