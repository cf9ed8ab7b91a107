-- How many session_updates rows of the seller were inserted since the fold watermark fold_lo: what
-- session_live.sql will read (clickhouse/session_reports.py picks by it where that reads the folded states).
SELECT count() AS rows
FROM {db}.session_updates
WHERE seller_id = {seller_id:String} AND inserted >= toDateTime({fold_lo:UInt32}, 'UTC')
