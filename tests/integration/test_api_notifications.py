"""Webhook channels and deliveries (docs/notifications.md): a running API (real Kafka, chdb), a real HTTP server with a
healthy, a failing-then-healthy and a hanging endpoint."""

from __future__ import annotations

import time

import msgspec
import pytest

from api.notify import webhook
from clickhouse.migrate import migrate
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import wait_until
from tests.support.webhook_server import hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_channel_routes_refuse_bad_targets_and_other_sellers(make_settings, add_seller):
    s = make_settings(smtp_host="smtp.shop.example")  # dev mode off: the production rules
    api = Api(
        s,
        {
            "shop-a": add_seller(s, "shop-a")[1],
            "shop-b": add_seller(s, "shop-b")[1],
            "no-pii": add_seller(s, "shop-a", can_read_pii=False)[1],
        },
    )
    try:
        for url, why in (
            ("http://hooks.shop.example/", "must use https"),
            ("https://127.0.0.1/x", "loopback"),
            ("https://169.254.169.254/", "link-local"),
            ("https://10.0.0.1/", "private"),
            ("https://localhost/x", "this machine"),
        ):
            r = api.call("POST", "shop-a", "/webhooks", json={"url": url})
            assert r.status_code == 422 and why in r.json()["detail"], (url, r.text)
        r = api.call("POST", "shop-a", "/emails", json={"address": "not-an-address"})
        assert r.status_code == 422 and "not an email address" in r.json()["detail"]

        r = api.call("POST", "shop-a", "/webhooks", json={"url": "https://hooks.shop.example/lm"})
        assert r.status_code == 201, r.text
        hook = r.json()
        assert hook["signing_secret"].startswith("whsec_") and hook["can_read_pii"] is True
        assert api.call("POST", "shop-a", "/webhooks", json={"url": "https://hooks.shop.example/lm"}).status_code == 409
        masked = api.call(
            "POST", "shop-a", "/webhooks", token=api.tokens["no-pii"], json={"url": "https://other.shop.example/lm"}
        ).json()
        assert masked["can_read_pii"] is False  # a token without the PII right cannot add a channel that has it
        assert api.call("POST", "shop-a", "/emails", json={"address": "ops@shop.example"}).status_code == 201

        listed = api.call("GET", "shop-a", "/channels").json()["channels"]
        assert [c["kind"] for c in listed] == ["webhook", "webhook", "email"]
        assert all("signing_secret" not in c and "secret_enc" not in c for c in listed)
        # Another seller's token sees nothing and cannot remove anything (404 like an unknown seller).
        assert api.call("GET", "shop-a", "/channels", token=api.tokens["shop-b"]).status_code == 404
        assert api.call("GET", "shop-b", "/channels", token=api.tokens["shop-a"]).status_code == 404
        assert api.call("GET", "shop-b", "/channels").json() == {"channels": []}
        assert (
            api.call("DELETE", "shop-b", f"/channels/{hook['channel_id']}", token=api.tokens["shop-a"]).status_code
            == 404
        )
        assert api.call("DELETE", "shop-b", f"/channels/{hook['channel_id']}").status_code == 404  # not shop-b's
        assert api.call("DELETE", "shop-a", f"/channels/{hook['channel_id']}").status_code == 204
        assert len(api.call("GET", "shop-a", "/channels").json()["channels"]) == 2
    finally:
        api.stop()
        api.registry.stop()


def test_webhooks_signed_retried_isolated_failed_and_redelivered(make_settings, add_seller, hooks):
    s = make_settings(dev_mode=True, notify_retry_for_s=6.0, **FAST_RETRIES)  # dev mode: http to 127.0.0.1
    migrate(s)
    api = Api(s, {n: add_seller(s, n)[1] for n in ("healthy", "flaky", "dead")})
    try:
        secrets = {}
        for seller, mode in (("healthy", "ok"), ("flaky", "fail"), ("dead", "hang")):
            r = api.call("POST", seller, "/webhooks", json={"url": hooks.url(f"/{seller}", mode)})
            assert r.status_code == 201, r.text
            secrets[seller] = r.json()["signing_secret"]
        r = api.call("POST", "healthy", "/emails", json={"address": "ops@shop.example"})
        assert r.status_code == 409 and "LIVEMETRICS_SMTP_HOST" in r.json()["detail"]  # no SMTP server here
        send(s, alert("dead", "d-1"), alert("flaky", "f-1"), alert("healthy", "h-1"))

        # The healthy seller's alert does not wait behind the dead endpoint's request, whichever the
        # notifier starts first: it arrives before that request's 2 s timeout could have let it go.
        dead = hooks.endpoints["/dead"]
        got = wait_until(lambda: dead.received and hooks.endpoints["/healthy"].received, 30, what="both requests")
        h = got[0]
        assert h.at < dead.received[0].at + 2.0, (h.at, dead.received[0].at)
        assert webhook.verify(
            secrets["healthy"],
            h.headers["x-livemetrics-timestamp"],
            h.body,
            h.headers["x-livemetrics-signature"],
            now=time.time(),
        )
        assert not webhook.verify(
            secrets["flaky"],
            h.headers["x-livemetrics-timestamp"],
            h.body,
            h.headers["x-livemetrics-signature"],
            now=time.time(),
        )
        assert (
            h.headers["idempotency-key"] == "h-1"
            and msgspec.json.decode(h.body)["customer"]["email"] == "ada@example.com"
        )

        # 500s are retried with backoff; once the endpoint recovers the alert is delivered, same key.
        wait_until(lambda: len(hooks.endpoints["/flaky"].received) >= 2, 30, what="flaky retried")
        # Outcomes are written in batches beside the sends (api/notify/outcomes.py): shown a moment later.
        pending = wait_until(lambda: [d for d in api.deliveries("flaky") if d["last_error"]], 10, what="error shown")
        assert pending[0]["status"] == "pending" and "HTTP 500: boom" in pending[0]["last_error"], pending
        hooks.endpoints["/flaky"].mode = "ok"
        wait_until(lambda: api.deliveries("flaky", status="delivered"), 30, what="flaky delivered")
        assert {r.headers["idempotency-key"] for r in hooks.endpoints["/flaky"].received} == {"f-1"}

        # The hanging endpoint times out on each attempt until the window closes: kept as failed.
        failed = wait_until(lambda: api.deliveries("dead", status="failed"), 40, what="dead delivery failed")
        assert failed[0]["alert_id"] == "d-1" and "no answer within 2 s" in failed[0]["last_error"]
        assert failed[0]["attempts"] >= 2
        assert api.deliveries("healthy")[0]["status"] == "delivered"

        # The seller redelivers it once the endpoint is back.
        hooks.endpoints["/dead"].mode = "ok"
        before = len(hooks.endpoints["/dead"].received)
        assert api.call("POST", "dead", f"/deliveries/{failed[0]['delivery_id']}/redeliver").status_code == 202
        wait_until(lambda: api.deliveries("dead", status="delivered"), 30, what="redelivered")
        assert hooks.endpoints["/dead"].received[before].headers["idempotency-key"] == "d-1"
        assert api.call("POST", "healthy", f"/deliveries/{failed[0]['delivery_id']}/redeliver").status_code == 404
    finally:
        api.stop()
        api.registry.stop()


def test_a_pending_delivery_survives_an_api_restart(make_settings, add_seller, hooks):
    s = make_settings(dev_mode=True, **FAST_RETRIES)
    migrate(s)
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    try:
        assert api.call("POST", "shop-a", "/webhooks", json={"url": hooks.url("/a", "fail")}).status_code == 201
        send(s, alert("shop-a", "a-1"))
        wait_until(lambda: api.deliveries("shop-a", status="pending"), 30, what="delivery recorded as pending")
        api.stop()
        hooks.endpoints["/a"].mode = "ok"
        n = len(hooks.endpoints["/a"].received)
        api.start()  # a new API process-equivalent: it finds what the last one owed in ClickHouse
        wait_until(lambda: api.deliveries("shop-a", status="delivered"), 30, what="delivered after the restart")
        assert [r.headers["idempotency-key"] for r in hooks.endpoints["/a"].received[n:]] == ["a-1"]
    finally:
        api.stop()
        api.registry.stop()


def test_email_refused_then_sent_and_rate_limited_into_a_digest(make_settings, add_seller):
    from tests.support.smtp_server import SmtpServer

    smtpd = SmtpServer().start()
    s = make_settings(
        smtp_host="127.0.0.1",
        smtp_port=smtpd.port,
        smtp_starttls=False,
        notify_email_max=1,
        notify_email_window_s=8.0,
        public_url="https://lm.example",
        **FAST_RETRIES,
    )
    migrate(s)
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    try:
        assert api.call("POST", "shop-a", "/emails", json={"address": "ops@shop.example"}).status_code == 201
        smtpd.mode = "refuse"
        send(s, alert("shop-a", "a-1"))
        pending = wait_until(
            lambda: [d for d in api.deliveries("shop-a", status="pending") if d["last_error"]],
            30,
            what="the refusal recorded",
        )
        assert "the SMTP server refused: 550 5.7.1 relaying denied" in pending[0]["last_error"]
        assert pending[0]["target"] == "ops@shop.example"
        smtpd.mode = "ok"
        wait_until(lambda: smtpd.messages, 30, what="the email after the refusal")
        first = smtpd.messages[0]
        assert first["To"] == "ops@shop.example" and first["Subject"] == "Payment failed 12.50 EUR (shop-a)"
        text = first.get_body(("plain",)).get_content()
        assert "Alert: a-1" in text and "ada@example.com" in text and "https://lm.example/dashboard/#errors" in text

        # One email per 8 s for this seller: what fails meanwhile waits and goes out as one digest.
        send(s, alert("shop-a", "a-2"))
        wait_until(
            lambda: any(d["alert_id"] == "a-2" for d in api.deliveries("shop-a", status="pending")),
            10,
            what="a-2 waiting for the seller's next email",
        )
        send(s, alert("shop-a", "a-3"), alert("shop-a", "a-4"))
        wait_until(lambda: len(api.deliveries("shop-a", status="delivered")) == 4, 30, what="all delivered")
        assert len(smtpd.messages) == 2
        digest = smtpd.messages[1]
        assert digest["Subject"] == "3 alerts for shop-a"
        body = digest.get_body(("plain",)).get_content()
        assert all(f"Alert: a-{i}" in body for i in (2, 3, 4))
    finally:
        api.stop()
        api.registry.stop()
        smtpd.stop()


def test_rules_pick_kinds_and_amounts_and_hold_alerts_in_quiet_hours(make_settings, add_seller, hooks):
    s = make_settings(dev_mode=True, **FAST_RETRIES)
    migrate(s)
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    try:
        big = api.call("POST", "shop-a", "/webhooks", json={"url": hooks.url("/big")}).json()["channel_id"]
        quiet = api.call("POST", "shop-a", "/webhooks", json={"url": hooks.url("/quiet")}).json()["channel_id"]
        r = api.call("PUT", "shop-a", f"/channels/{big}/rules", json={"kinds": ["payment_failed"], "min_amount": "100"})
        assert r.status_code == 200 and r.json()["rules"]["min_amount"] == "100", r.text
        for body, why in (
            ({"kinds": ["nope"]}, "kinds"),
            ({"min_amount": "lots"}, "min_amount"),
            ({"quiet_start": "22:00"}, "quiet_start and quiet_end"),
            ({"tz": "Mars/Base"}, "tz"),
        ):
            r = api.call("PUT", "shop-a", f"/channels/{big}/rules", json=body)
            assert r.status_code == 422 and why in str(r.json()["detail"]), (body, r.text)
        # Quiet from an hour ago to an hour from now (UTC): an alert now waits for the quiet hours to end.
        now = time.gmtime()
        start, end = (f"{(now.tm_hour + d) % 24:02d}:{now.tm_min:02d}" for d in (23, 1))
        r = api.call(
            "PUT", "shop-a", f"/channels/{quiet}/rules", json={"quiet_start": start, "quiet_end": end, "tz": "UTC"}
        )
        assert r.status_code == 200, r.text

        send(
            s,
            {**alert("shop-a", "small"), "order": {"order_id": "o-2", "amount": "12.50", "currency": "EUR"}},
            {**alert("shop-a", "large"), "order": {"order_id": "o-3", "amount": "250.00", "currency": "EUR"}},
            {"kind": "error_spike", "alert_id": "spike-1", "seller_id": "shop-a", "failures": 9},
        )
        wait_until(lambda: len(api.deliveries("shop-a")) == 4, 30, what="the deliveries the rules allow")
        wait_until(lambda: hooks.endpoints["/big"].received, 30, what="the large failure")
        assert [r.headers["idempotency-key"] for r in hooks.endpoints["/big"].received] == ["large"]
        held = {d["alert_id"]: d for d in api.deliveries("shop-a") if d["channel_id"] == quiet}
        assert set(held) == {"small", "large", "spike-1"}
        assert all(d["status"] == "pending" and d["next_attempt_at"] > d["updated_at"] for d in held.values())
        assert not hooks.endpoints["/quiet"].received
    finally:
        api.stop()
        api.registry.stop()


def test_an_api_that_does_not_deliver_still_manages_channels(make_settings, add_seller):
    s = make_settings(notify=False)
    migrate(s)
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    try:
        assert api.app.state.notifier is None
        assert api.call("POST", "shop-a", "/webhooks", json={"url": "https://hooks.shop.example/lm"}).status_code == 201
        assert len(api.call("GET", "shop-a", "/channels").json()["channels"]) == 1
        # Redelivery works here too (the standalone notifier sends it): tests/integration/test_notifier_standalone.py
        r = api.call("POST", "shop-a", "/deliveries/dl_unknown/redeliver")
        assert r.status_code == 404 and "no delivery" in r.json()["detail"]
    finally:
        api.stop()
        api.registry.stop()
