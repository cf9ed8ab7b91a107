-- GENERATED from clickhouse/bi/app_access.sql and clickhouse/bi/reader_role.sql for the database
-- `livemetrics` by `python -m clickhouse.bi deploy-sql > deploy/clickhouse/access.sql`; edit those, not this
-- (tests/integration/test_clickhouse_bi_access.py fails when they differ). Run once as an admin after
-- `livemetrics migrate`: clickhouse-client --multiquery < deploy/clickhouse/access.sql. Seller logins:
-- python -m clickhouse.bi seller <seller_id> <user> <password> [--analyst] (docs/bi.md).
GRANT SELECT, INSERT, ALTER DELETE ON livemetrics.* TO livemetrics_app;
GRANT CREATE TABLE, CREATE VIEW, ALTER, DROP TABLE, DROP VIEW ON livemetrics.* TO livemetrics_app;
GRANT TRUNCATE ON livemetrics.session_fold_changes TO livemetrics_app;
CREATE ROLE IF NOT EXISTS livemetrics_analyst SETTINGS PROFILE 'livemetrics_analyst';
GRANT SELECT(event_id, type, seller_id, session_id, ts, received_at, page_type, category, offer_id, path,
             items, total, currency, payment_method, order_id, error_code, ip_hash,
             browser, os, device, is_bot, backfill) ON livemetrics.events TO livemetrics_analyst;
GRANT SELECT ON livemetrics.bi_events TO livemetrics_analyst;
CREATE ROLE IF NOT EXISTS livemetrics_bi_reader SETTINGS PROFILE 'livemetrics_bi_reader';
ALTER ROLE livemetrics_bi_reader SETTINGS PROFILE 'livemetrics_bi_reader';
GRANT SELECT ON livemetrics.bi_events TO livemetrics_bi_reader;
GRANT SELECT ON livemetrics.bi_traffic_hourly TO livemetrics_bi_reader;
GRANT SELECT ON livemetrics.bi_pages_hourly TO livemetrics_bi_reader;
GRANT SELECT ON livemetrics.bi_payments_hourly TO livemetrics_bi_reader;
GRANT SELECT ON livemetrics.bi_payment_errors TO livemetrics_bi_reader;
CREATE ROW POLICY IF NOT EXISTS lm_all_rows ON livemetrics.events, livemetrics.rollup_traffic_hourly, livemetrics.rollup_pages_hourly,
    livemetrics.rollup_payments_hourly, livemetrics.payment_errors, livemetrics.payment_error_status USING 1 AS PERMISSIVE TO ALL;
