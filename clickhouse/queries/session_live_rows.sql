-- Where a session report starts, and its check at the end (which the seller's next report may start from):
-- the fold's watermark (the fragment fold_watermark.sql, its one
-- definition), whether session_live.sql may read the few live sessions' folded states by key: if at most
-- {few_rows} session_updates rows of the seller were inserted since (`rows` counts up to one more), and
-- the fragment join_marker: the marker of the in-memory table session_folded_join (`join_to`, the
-- watermark up to which it holds every entry, and `join_id`, the rebuild that wrote it; session_fold.py),
-- or zeros when it is not used. clickhouse/session_reports.py picks the form by them. One query for all
-- saves a round trip per report (~2 ms of ~70-90 with many live sessions).
-- The shared live part (clickhouse/session_live_cache.py): the seller's newest fill at this watermark made
-- in the last {fill_max_age_s} s (`fill` 0: none) with its block number and the join_id it was made with,
-- and `newer`, the seller's rows since the watermark in parts past it (up to {refill_rows} + 1), counted
-- only when there is a fill (without one, this count read up to 20,001 rows for nothing: ~10 ms of the
-- query's ~30 at the bench's `recent` state, BENCHMARKS.md, nineteenth session).
WITH ({fold_watermark}) AS lo,
     (SELECT argMax((fill, blocks, join_id), made) FROM {db}.session_live_fills
      WHERE seller_id = {seller_id:String} AND watermark = lo AND made >= now64(3) - {fill_max_age_s}) AS f
SELECT lo AS watermark,
       (SELECT count() FROM (SELECT 1 FROM {db}.session_updates
        WHERE seller_id = {seller_id:String} AND inserted >= toDateTime(lo, 'UTC') LIMIT {few_rows} + 1)) AS rows
       {join_marker},
       f.1 AS fill, f.2 AS fill_blocks, f.3 AS fill_join_id,
       (SELECT count() FROM (SELECT 1 FROM {db}.session_updates
        WHERE f.1 != 0 AND seller_id = {seller_id:String} AND inserted >= toDateTime(lo, 'UTC')
          AND {part_block} > f.2
        LIMIT {refill_rows} + 1)) AS newer
