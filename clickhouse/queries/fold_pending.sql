-- The session_updates rows a fold step from fold_lo to fold_hi would take, per 10 s insert bucket (the
-- fold cuts a long backlog at a bucket boundary, clickhouse/session_fold.py).
SELECT toUInt32(inserted) AS bucket, count() AS rows
FROM {db}.session_updates
WHERE inserted >= toDateTime({fold_lo:UInt32}, 'UTC') AND inserted < toDateTime({fold_hi:UInt32}, 'UTC')
GROUP BY bucket
ORDER BY bucket
