-- SERVER ONLY: one BI login per seller, read-only, that sees only that seller's rows (restrictive row
-- policies on every table behind the bi_* views). {user}, {password} and {seller_id} are filled in by
-- clickhouse.bi (quoted); needs reader_role.sql applied first.
CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY {password} DEFAULT ROLE livemetrics_bi_reader SETTINGS readonly = 1;
GRANT livemetrics_bi_reader TO {user};
CREATE ROW POLICY IF NOT EXISTS lm_seller_{user} ON {db}.events, {db}.rollup_traffic_hourly, {db}.rollup_pages_hourly,
    {db}.rollup_payments_hourly, {db}.payment_errors, {db}.payment_error_status
    USING seller_id = {seller_id} AS RESTRICTIVE TO {user};
