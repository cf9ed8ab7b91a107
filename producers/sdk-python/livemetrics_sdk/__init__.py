"""livemetrics-sdk: send storefront events to a livemetrics gateway from a shop's server (README.md)."""

__version__ = "0.1.0"

from livemetrics_sdk import build  # noqa: E402 - __version__ first: base.py reads it
from livemetrics_sdk.client import AsyncClient, Client  # noqa: E402
from livemetrics_sdk.errors import GatewayError, KeyRefused, LivemetricsError  # noqa: E402
from livemetrics_sdk.events import (  # noqa: E402
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_EVENT_BYTES,
    Checkout,
    Customer,
    Event,
    EventType,
    Item,
    Page,
    PageType,
    Payment,
)
from livemetrics_sdk.wire import SendResult  # noqa: E402

__all__ = [
    "AsyncClient",
    "Checkout",
    "Client",
    "Customer",
    "Event",
    "EventType",
    "GatewayError",
    "Item",
    "KeyRefused",
    "LivemetricsError",
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "MAX_EVENT_BYTES",
    "Page",
    "PageType",
    "Payment",
    "SendResult",
    "build",
]
