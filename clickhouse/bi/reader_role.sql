-- SERVER ONLY (never applied on embedded chdb, and not executed on the build machine): the read-only
-- role BI tools connect with. It may read the bi_* views and nothing else. Apply once per database:
--   clickhouse-client --multiquery < rendered.sql   (or: python -m clickhouse.bi role)
CREATE ROLE IF NOT EXISTS livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_events TO livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_traffic_hourly TO livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_pages_hourly TO livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_payments_hourly TO livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_payment_errors TO livemetrics_bi_reader;
-- Row policies hide every row from users without a permissive policy once any policy exists on a table:
-- this one keeps every other user (admins, the sink, the API) seeing all rows; sellers are narrowed by
-- the restrictive policies of seller_access.sql. Views are SQL SECURITY INVOKER, so the policies on the
-- tables apply to reads through the views.
CREATE ROW POLICY IF NOT EXISTS lm_all_rows ON {db}.events, {db}.rollup_traffic_hourly, {db}.rollup_pages_hourly,
    {db}.rollup_payments_hourly, {db}.payment_errors, {db}.payment_error_status USING 1 AS PERMISSIVE TO ALL;
