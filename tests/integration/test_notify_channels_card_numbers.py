"""Channels stored before the API refused card numbers in their targets (da72474): a webhook URL or email
address holding one stays in the compacted seller-channels topic until removed. Such a channel is read with
the card number blanked and marked blocked (api/notify/channels.py, ``usable``): nothing is sent to it, each
delivery is recorded failed for good naming the reason, the channel list says so, and the card number
reaches neither the deliveries' rows nor the API's answers; the seller's other channels are served as
before. A running API with its notifier (real Kafka, chdb), a real webhook server and SMTP server."""

from __future__ import annotations

import msgspec
import pytest

from api.notify.channels import ChannelWriter, new_channel
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from livemetrics.card_numbers import card_in_string
from tests.support.kafka_read import read_topic
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import wait_until
from tests.support.smtp_server import SmtpServer
from tests.support.webhook_server import hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

CARD_PATH = "/pay?pan=4111111111111111"
CARD_ADDRESS = "4111.1111.1111.1111@shop.example"


def test_a_channel_stored_with_a_card_number_is_never_sent_to_and_says_why(make_settings, add_seller, hooks):  # noqa: F811
    """Seen failing on the old code: the alert was POSTed to the URL holding the card number and emailed to
    the address holding one, and both were listed and stored in the deliveries as they were."""
    smtpd = SmtpServer().start()
    s = make_settings(dev_mode=True, smtp_host="127.0.0.1", smtp_port=smtpd.port, smtp_starttls=False, **FAST_RETRIES)
    migrate(s)
    kek = s.key_encryption_key.get_secret_value()
    stored = [
        new_channel("shop-a", "webhook", hooks.url(CARD_PATH), kek)[0],
        new_channel("shop-a", "email", CARD_ADDRESS, kek)[0],
    ]
    writer = ChannelWriter(s)  # as the API wrote them before it checked targets
    for ch in stored:
        writer.write(ch.channel_id, msgspec.json.encode(ch))
    writer.close()
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    try:
        r = api.call("POST", "shop-a", "/webhooks", json={"url": hooks.url("/lm")})
        assert r.status_code == 201, r.text
        send(s, alert("shop-a", "a-1"))
        wait_until(lambda: hooks.endpoints["/lm"].received, 30, what="the seller's other channel served")
        failed = wait_until(
            lambda: got if len(got := api.deliveries("shop-a", status="failed")) == 2 else None,
            30,
            what="both blocked deliveries recorded failed",
        )
        assert {d["channel_id"] for d in failed} == {ch.channel_id for ch in stored}
        for d in failed:
            assert d["attempts"] == 1 and "holds a card number" in d["last_error"], d
            assert "remove the channel and add it again" in d["last_error"], d
        assert not hooks.endpoints[CARD_PATH].received and not smtpd.messages
        wait_until(lambda: api.deliveries("shop-a", status="delivered"), 30, what="the other delivery recorded")

        listed = api.call("GET", "shop-a", "/channels")
        assert not card_in_string(listed.text), listed.text
        blocked = {c["channel_id"]: c for c in listed.json()["channels"] if "blocked" in c}
        assert set(blocked) == {ch.channel_id for ch in stored}, listed.text
        assert blocked[stored[0].channel_id]["target"].endswith("/pay?pan=[redacted card number]")
        assert "card number" in blocked[stored[1].channel_id]["blocked"]
        every = api.call("GET", "shop-a", "/deliveries")
        assert every.status_code == 200 and not card_in_string(every.text), every.text
        db = s.clickhouse_database
        targets = get_client(s).query(f"SELECT target, last_error FROM {db}.notification_deliveries").result_rows
        assert len(targets) >= 3 and not any(card_in_string(t) or card_in_string(e) for t, e in targets), targets

        # Redelivered, it fails again at once; removed, it is gone.
        again = failed[0]["delivery_id"]
        r = api.call("POST", "shop-a", f"/deliveries/{again}/redeliver")
        assert r.status_code == 202, r.text  # recorded pending before it answers
        wait_until(
            lambda: [d for d in api.deliveries("shop-a", status="failed") if d["delivery_id"] == again],
            30,
            what="the redelivery recorded failed",
        )
        assert not hooks.endpoints[CARD_PATH].received and not smtpd.messages

        # Its rules changed, the record is written back blanked and still blocked: the card number leaves the
        # topic once Kafka compacts it.
        r = api.call("PUT", "shop-a", f"/channels/{stored[0].channel_id}/rules", json={"kinds": ["payment_failed"]})
        assert r.status_code == 200 and "blocked" in r.json() and not card_in_string(r.text), r.text
        records = read_topic(s, "seller-channels", expect=4)  # the two stored, the API's, the rules change
        mine = [m.value() for m in records if m.key() == stored[0].channel_id.encode()]  # one partition: in order
        assert len(records) == 4 and len(mine) == 2, [m.key() for m in records]
        assert card_in_string(mine[0].decode()) and not card_in_string(mine[1].decode()), mine
        assert b'"blocked"' in mine[1]
        for ch in stored:
            assert api.call("DELETE", "shop-a", f"/channels/{ch.channel_id}").status_code == 204
        assert len(api.call("GET", "shop-a", "/channels").json()["channels"]) == 1
    finally:
        api.stop()
        api.registry.stop()
        smtpd.stop()
