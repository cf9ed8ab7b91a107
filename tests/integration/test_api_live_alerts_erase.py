"""Alerts a running API holds in memory: `livemetrics erase` reaches them, de-duplication is per
(seller, alert id), and a token made by `sellers add --no-pii` sees them masked (docs/security.md)."""

from __future__ import annotations

import time

import msgspec
import pytest
from confluent_kafka import Producer

from api.main import create_api
from clickhouse.erase import erase
from clickhouse.migrate import migrate
from livemetrics.kafka_config import producer_config
from livemetrics.keys import KeyRegistry
from operations import processes
from operations.cli import build_parser
from tests.support.servers import ThreadServer, get_json, wait_until

pytestmark = pytest.mark.integration
ADA, BOB, CAROL = "ada@example.com", "bob@example.com", "carol@example.com"


def alert(seller: str, alert_id: str, email: str, at: int) -> dict:
    return {
        "kind": "payment_failed",
        "alert_id": alert_id,
        "seller_id": seller,
        "session_id": "s-1",
        "at": at,
        "customer": {"email": email, "phone": "+44 20 7946 0958", "name": "Ada Lovelace"},
        "payment": {
            "method": "card",
            "error_code": "card_declined",
            "error_message": f"declined, customer {email}",
            "details": {"billing_email": email},
        },
        "client": {"ip": "203.0.113.9", "browser": "Chrome", "user_agent": "Mozilla/5.0 (X11; rare 9.1)"},
        "order": {"order_id": "o-1"},
        "context": {},
    }


@pytest.fixture
def api(settings, add_seller, capsys):
    tokens = {"shop-a": add_seller(settings, "shop-a")[1], "shop-b": add_seller(settings, "shop-b")[1]}
    args = build_parser().parse_args(["sellers", "add", "shop-a", "--no-pii"])
    assert processes.sellers(settings, args) == 0
    tokens["no-pii"] = next(
        line.split()[-1] for line in capsys.readouterr().out.splitlines() if line.startswith("read token:")
    )
    migrate(settings)
    registry = KeyRegistry(settings).start()
    app = create_api(settings, registry, run_sink=False)
    server = ThreadServer(app).start()
    wait_until(lambda: all(registry.authenticate(t, ("token",)) for t in tokens.values()), 15, what="tokens loaded")
    wait_until(app.state.feed.caught_up.is_set, 20, what="live feed at the end of its topics")
    producer = Producer(producer_config(settings))

    def send(*alerts: dict) -> None:
        for a in alerts:  # keyed by seller, as the worker does: one seller's alerts stay in order
            producer.produce(
                settings.topic("payment-alerts"), key=a["seller_id"].encode(), value=msgspec.json.encode(a)
            )
        assert producer.flush(15) == 0

    def alerts(seller: str, token: str | None = None) -> list[dict]:
        return get_json(f"{server.url}/v1/sellers/{seller}/alerts", token or tokens[seller])["items"]

    yield {"settings": settings, "send": send, "alerts": alerts, "tokens": tokens}
    server.stop()
    registry.stop()


def test_erase_drops_the_customers_alerts_from_a_running_api(api):
    now = int(time.time() * 1000)
    api["send"](
        alert("shop-a", "ev-1", ADA, now - 3000),
        alert("shop-a", "ev-2", BOB, now - 2000),
        alert("shop-b", "ev-1", CAROL, now - 1000),
    )  # shop-b's own alert with the same event id
    wait_until(lambda: len(api["alerts"]("shop-a")) == 2 and api["alerts"]("shop-b"), 20, what="alerts held")
    assert [a["customer"]["email"] for a in api["alerts"]("shop-b")] == [CAROL]

    removed = erase(api["settings"], email="ADA@example.com")
    assert removed == {"events": 0, "payment_errors": 0, "payment_error_status": 0}  # only the API held her
    wait_until(lambda: [a["alert_id"] for a in api["alerts"]("shop-a")] == ["ev-2"], 20, what="Ada's alert dropped")
    # An older alert of hers arriving after the erase is dropped too; the marker after it shows it was read.
    api["send"](alert("shop-a", "ev-3", ADA, now - 500), alert("shop-a", "ev-4", BOB, now - 400))
    wait_until(lambda: "ev-4" in [a["alert_id"] for a in api["alerts"]("shop-a")], 20, what="marker alert")
    assert [a["alert_id"] for a in api["alerts"]("shop-a")] == ["ev-4", "ev-2"]
    assert [a["customer"]["email"] for a in api["alerts"]("shop-b")] == [CAROL]


def test_a_no_pii_token_sees_contact_free_text_and_user_agent_masked(api):
    now = int(time.time() * 1000)
    api["send"](alert("shop-a", "ev-9", ADA, now))
    full = wait_until(lambda: api["alerts"]("shop-a"), 20, what="alert held")[0]
    masked = api["alerts"]("shop-a", api["tokens"]["no-pii"])[0]
    assert full["client"]["user_agent"] and ADA in full["payment"]["error_message"]
    assert ADA not in msgspec.json.encode(masked).decode() and "7946" not in msgspec.json.encode(masked).decode()
    assert (
        masked["client"]["user_agent"] is None
        and masked["payment"]["error_message"] == "declined, customer a***@example.com"
    )
    assert masked["payment"]["details"] == {"billing_email": "***"} and masked["pii_masked"] is True
