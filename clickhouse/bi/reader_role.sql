-- SERVER ONLY (never applied on embedded chdb): the read-only role BI tools connect with. It may read
-- the bi_* views and nothing else. Apply once per database:
--   python -m clickhouse.bi role   (or the rendered deploy/clickhouse/access.sql)
CREATE ROLE IF NOT EXISTS livemetrics_bi_reader SETTINGS PROFILE 'livemetrics_bi_reader';
-- and on a role made before it had a profile (CREATE ... IF NOT EXISTS leaves an existing role as it is);
-- the profile's limits (deploy/clickhouse/users.xml) keep one BI dashboard from taking the shared server
ALTER ROLE livemetrics_bi_reader SETTINGS PROFILE 'livemetrics_bi_reader';
GRANT SELECT ON {db}.bi_events TO livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_traffic_hourly TO livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_pages_hourly TO livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_payments_hourly TO livemetrics_bi_reader;
GRANT SELECT ON {db}.bi_payment_errors TO livemetrics_bi_reader;
-- Once any row policy exists on a table, a user sees a row only if one of its PERMISSIVE policies
-- allows it AND every one of its RESTRICTIVE policies allows it. This is the one permissive policy:
-- every user (the application, admins) keeps seeing every row. A seller's login is narrowed by the
-- RESTRICTIVE policies of seller_access.sql; no other permissive policy may exist on these tables (a
-- permissive per-seller policy would be OR-ed with this one and show every seller: checked by
-- tests/integration/test_clickhouse_bi_access.py). Views are SQL SECURITY INVOKER, so the policies on
-- the tables apply to reads through the views.
CREATE ROW POLICY IF NOT EXISTS lm_all_rows ON {db}.events, {db}.rollup_traffic_hourly, {db}.rollup_pages_hourly,
    {db}.rollup_payments_hourly, {db}.payment_errors, {db}.payment_error_status USING 1 AS PERMISSIVE TO ALL;
