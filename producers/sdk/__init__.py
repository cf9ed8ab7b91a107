"""The livemetrics server SDK: ``Client`` / ``AsyncClient`` sign, batch and retry (docs/ingest.md)."""

from producers.sdk.client import AsyncClient, Client, KeyRefused, SendResult

__all__ = ["AsyncClient", "Client", "KeyRefused", "SendResult"]
