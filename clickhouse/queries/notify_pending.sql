-- Deliveries still owed (api/notify/service.py resumes them at start; the standalone notifier also looks
-- for new ones every notify_poll_s, with the row's version), oldest first.
SELECT seller_id, delivery_id, alert_id, alert_kind, channel_id, target, body, status, attempts, last_error,
       toUnixTimestamp64Milli(created_at) AS created_ms, toUnixTimestamp64Milli(next_at) AS next_ms,
       version
FROM {db}.notification_deliveries FINAL
WHERE status = 'pending'
ORDER BY created_at
