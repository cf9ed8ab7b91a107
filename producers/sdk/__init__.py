"""The server SDK, re-exported from the ``livemetrics-sdk`` distribution (producers/sdk-python, docs/ingest.md)."""

from producers.sdk.client import AsyncClient, Client, GatewayError, KeyRefused, SendResult

__all__ = ["AsyncClient", "Client", "GatewayError", "KeyRefused", "SendResult"]
