"""An API with the notifier for notification tests (real Kafka, chdb): its routes, and alerts sent
straight to ``payment-alerts`` as the worker writes them."""

from __future__ import annotations

import time

import httpx
import msgspec

from api.main import create_api
from livemetrics.keys import KeyRegistry
from tests.support.kafka_write import writer
from tests.support.servers import ThreadServer, wait_until

FAST_RETRIES = dict(notify_timeout_s=2.0, notify_backoff_s=0.2, notify_backoff_max_s=0.5)


def alert(seller: str, alert_id: str) -> dict:
    return {
        "kind": "payment_failed",
        "alert_id": alert_id,
        "seller_id": seller,
        "session_id": "s-1",
        "at": int(time.time() * 1000),
        "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "order": {"order_id": "o-1", "amount": "12.50", "currency": "EUR"},
        "payment": {"method": "card", "error_code": "card_declined"},
    }


class Api:
    """The API with its own key registry, as ``livemetrics api`` runs it: started and stopped with it (``stop``
    then ``start`` is a restart). Before, the helper started a registry of its own that only the tests that
    remembered to stop it stopped: test_api_card_fields left it running, and its topic watch lent its admin
    client to test_topic_watch_admin_clients later in the same process (CI at 3b4a1fb)."""

    def __init__(self, settings, tokens: dict[str, str]):
        self.settings, self.tokens = settings, tokens
        self.start()
        wait_until(
            lambda: all(self.registry.authenticate(t, ("token",)) for t in tokens.values()), 15, what="tokens loaded"
        )

    @property
    def registry(self) -> KeyRegistry:
        return self.app.state.registry

    def start(self) -> None:
        self.app = create_api(self.settings, run_sink=False)
        self.server = ThreadServer(self.app).start()
        if self.settings.notify:
            wait_until(lambda: self.app.state.notifier.intake.assigned.is_set(), 60, what="notifier assigned")

    def stop(self) -> None:
        self.server.stop()

    def call(self, method: str, seller: str, path: str, token: str | None = None, **kw) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.server.url}/v1/sellers/{seller}/notifications{path}",
            timeout=15,
            headers={"Authorization": f"Bearer {token or self.tokens[seller]}"},
            **kw,
        )

    def deliveries(self, seller: str, **params) -> list[dict]:
        r = self.call("GET", seller, "/deliveries", params=params)
        assert r.status_code == 200, r.text
        return r.json()["items"]


def send(settings, *alerts: dict) -> None:
    # Into the seller's partition as the worker's producer picks it (Kafka's murmur2): the notifier owning
    # that partition is the one that sends the seller's deliveries (api/notify/ownership.py).
    p = writer(settings, partitioner="murmur2_random")
    for a in alerts:
        p.produce(settings.topic("payment-alerts"), key=a["seller_id"].encode(), value=msgspec.json.encode(a))
    assert p.flush(15) == 0
