"""Test support: real services (Kafka, ClickHouse), in-process servers, event factories."""
