"""The ingest gateway: validates storefront events and makes them durable in Kafka."""
