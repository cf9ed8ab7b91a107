"""Kept for existing imports (``from producers.sdk.client import Client``): the server SDK is the
``livemetrics-sdk`` distribution in ``producers/sdk-python`` (httpx only; its README)."""

from __future__ import annotations

try:
    from livemetrics_sdk import AsyncClient, Client, GatewayError, KeyRefused, SendResult
except ImportError as e:  # pragma: no cover - only without `make setup`
    raise ImportError("producers.sdk is the livemetrics-sdk package now: pip install -e producers/sdk-python") from e

__all__ = ["AsyncClient", "Client", "GatewayError", "KeyRefused", "SendResult"]
