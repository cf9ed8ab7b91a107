-- SERVER ONLY: one login per seller, read-only, that sees only that seller's rows (RESTRICTIVE row
-- policies on every table behind the bi_* views and on events). {user}, {password}, {seller_id} and
-- {role} (livemetrics_bi_reader: the bi_* views; livemetrics_analyst: raw events without personal data)
-- are filled in by clickhouse.bi (quoted); needs app_access.sql and reader_role.sql applied first.
CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY {password} DEFAULT ROLE {role} SETTINGS readonly = 1;
GRANT {role} TO {user};
CREATE ROW POLICY IF NOT EXISTS lm_seller_{user} ON {db}.events, {db}.rollup_traffic_hourly, {db}.rollup_pages_hourly,
    {db}.rollup_payments_hourly, {db}.payment_errors, {db}.payment_error_status
    USING seller_id = {seller_id} AS RESTRICTIVE TO {user};
