"""ClickHouse: numbered migrations, named queries, the client factory and the sink."""
