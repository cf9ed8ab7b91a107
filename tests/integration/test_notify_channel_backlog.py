"""A channel owes a notifier at most ``notify_channel_backlog`` deliveries at once: a browser key is public,
so alerts can come faster than an endpoint takes them, and each channel's queue grew in memory for as long
as that lasted. Past the bound a new delivery is recorded failed at once, saying why, and the seller can
redeliver it; other sellers' channels are not held up. Real Kafka, chdb, webhook endpoints."""

from __future__ import annotations

import pytest

from clickhouse.migrate import migrate
from tests.support.notify_api import Api, alert, send
from tests.support.servers import wait_until
from tests.support.webhook_server import hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
BACKLOG, FLOOD = 3, 10


def test_a_flooded_channel_owes_at_most_its_backlog_and_the_rest_is_failed_saying_why(
    make_settings,
    add_seller,
    hooks,  # noqa: F811 - the fixture
):
    s = make_settings(dev_mode=True, notify_channel_backlog=BACKLOG, notify_timeout_s=30.0, notify_retry_for_s=600.0)
    migrate(s)
    api = Api(s, {n: add_seller(s, n)[1] for n in ("flood", "calm")})
    try:
        for seller, mode in (("flood", "hang"), ("calm", "ok")):
            r = api.call("POST", seller, "/webhooks", json={"url": hooks.url(f"/{seller}", mode)})
            assert r.status_code == 201, r.text
        send(s, *[alert("flood", f"f-{i}") for i in range(FLOOD)])
        send(s, alert("calm", "c-1"))

        failed = wait_until(
            lambda: (d := api.deliveries("flood", status="failed")) and len(d) == FLOOD - BACKLOG and d,
            30,
            what="the deliveries past the backlog recorded failed",
        )
        assert all(f"already owed {BACKLOG} deliveries" in d["last_error"] for d in failed), failed
        assert all(d["attempts"] == 0 for d in failed)
        # another seller's alert delivered (first: until then it is owed too, as seen under load: 4 owed)
        wait_until(lambda: api.deliveries("calm", status="delivered"), 30, what="another seller's alert delivered")
        dispatcher = api.app.state.notifier.dispatcher
        assert dispatcher.backlog()["deliveries_owed"] == BACKLOG  # one hanging, the others queued behind it
        assert hooks.endpoints["/flood"].open_requests == 1

        # The endpoint keeps up again: what it owed is delivered, and the seller redelivers a failed one.
        hooks.endpoints["/flood"].mode = "ok"
        hooks.release.set()
        wait_until(
            lambda: len(api.deliveries("flood", status="delivered")) == BACKLOG, 30, what="the backlog delivered"
        )
        r = api.call("POST", "flood", f"/deliveries/{failed[0]['delivery_id']}/redeliver")
        assert r.status_code == 202, r.text
        wait_until(lambda: len(api.deliveries("flood", status="delivered")) == BACKLOG + 1, 30, what="the redelivery")
        assert dispatcher.backlog()["deliveries_owed"] == 0
    finally:
        api.stop()
        api.registry.stop()
