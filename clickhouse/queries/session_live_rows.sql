-- Where a session report starts, and its check at the end (which the seller's next report may start from):
-- the fold's watermark (the fragment fold_watermark.sql, its one
-- definition), whether session_live.sql may read the few live sessions' folded states by key: if at most
-- {few_rows} session_updates rows of the seller were inserted since (`rows` counts up to one more), and
-- the fragment join_marker: the marker of the in-memory table session_folded_join (`join_to`, the
-- watermark up to which it holds every entry, and `join_id`, the rebuild that wrote it; session_fold.py),
-- or zeros when it is not used. clickhouse/session_reports.py picks the form by them. One query for all
-- saves a round trip per report (~2 ms of ~70-90 with many live sessions).
WITH ({fold_watermark}) AS lo
SELECT lo AS watermark,
       (SELECT count() FROM (SELECT 1 FROM {db}.session_updates
        WHERE seller_id = {seller_id:String} AND inserted >= toDateTime(lo, 'UTC') LIMIT {few_rows} + 1)) AS rows
       {join_marker}
