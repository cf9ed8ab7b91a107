"""A gateway on a thread for one seller's browser key: its URL and the key's headers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from livemetrics import keys
from livemetrics.keys import KeyRegistry
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.servers import ThreadServer, wait_until


@contextmanager
def browser_gateway(settings, add_seller, seller: str = "seller-a") -> Iterator[tuple[str, dict[str, str]]]:
    """Serve a gateway once the seller's browser key is loaded; yield (url, that key's headers)."""
    browser, _ = add_seller(settings, seller)
    registry = KeyRegistry(settings).start()
    wait_until(lambda: registry.record(keys.split_key(browser)[1]), 10, what="keys loaded")
    server = ThreadServer(create_gateway(settings, registry)).start()
    try:
        yield server.url, f.browser_headers(browser)
    finally:
        server.stop()
        registry.stop()
