"""A traffic-dropped alert end to end (docs/notifications.md): a seller with page views and then none gets a
``traffic_dropped`` alert from the worker, through the notifier, at its webhook. Real broker, chdb, worker
process, webhook server; small settings: one silent minute after a small baseline, checked every second."""

from __future__ import annotations

import time

import msgspec
import pytest

from clickhouse.migrate import migrate
from tests.integration.test_streams_live import PAGES, Feed, event
from tests.support.notify_api import FAST_RETRIES, Api
from tests.support.servers import WorkerProcess, wait_until
from tests.support.webhook_server import WebhookServer

pytestmark = pytest.mark.integration


def test_a_seller_whose_traffic_stops_gets_traffic_dropped_at_its_webhook(make_settings, add_seller, tmp_path):
    s = make_settings(
        dev_mode=True,
        traffic_drop_silent_s=60,
        traffic_drop_min_per_minute=0.1,
        traffic_watch_interval_s=1.0,
        **FAST_RETRIES,
    )
    migrate(s)
    hooks = WebhookServer().start()
    api = Api(s, {"shop-quiet": add_seller(s, "shop-quiet")[1]})
    w = WorkerProcess(s, tmp_path, "w").start()
    feed = Feed(s)
    try:
        r = api.call("POST", "shop-quiet", "/webhooks", json={"url": hooks.url("/quiet")})
        assert r.status_code == 201, r.text
        r = api.call(
            "PUT", "shop-quiet", f"/channels/{r.json()['channel_id']}/rules", json={"kinds": ["traffic_dropped"]}
        )
        assert r.status_code == 200, r.text
        # Ten page views three minutes ago (a baseline of 10/58 per minute over the hour before the silent
        # minute), then nothing: the last whole minute is silent.
        then = int(time.time() * 1000) - 180_000
        for i in range(10):
            ev = event("shop-quiet", f"quiet-session-{i}", "page_view", PAGES[i % len(PAGES)])
            ev.ts = ev.received_at = then + i
            feed.send(ev)
        feed.flush()
        got = wait_until(
            lambda: hooks.endpoints["/quiet"].received, 120, what="the traffic-dropped webhook", alive=w.alive
        )
        alert = msgspec.json.decode(got[0].body)
        assert alert["kind"] == "traffic_dropped" and alert["seller_id"] == "shop-quiet"
        assert alert["silent_s"] == 60 and alert["baseline_per_minute"] == round(10 / 58, 2)
        assert got[0].headers["idempotency-key"] == alert["alert_id"]
        assert alert["alert_id"].startswith("traffic_dropped:shop-quiet:")
        wait_until(lambda: api.deliveries("shop-quiet", status="delivered"), 30, what="the delivery recorded")
    finally:
        feed.p.flush(5)
        w.stop()
        api.stop()
        api.registry.stop()
        hooks.stop()
