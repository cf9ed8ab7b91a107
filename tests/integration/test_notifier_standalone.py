"""The notifier as its own process (``livemetrics notifier``, api/notify/standalone.py) for an API that
does not deliver (LIVEMETRICS_NOTIFY=false): it delivers alerts, serves /healthz /readyz /metrics, and
takes up a redelivery the seller asked for through the API. Real Kafka, chdb, a real webhook server."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from api.notify import standalone
from api.notify.channels import ChannelBook, new_channel
from clickhouse.migrate import migrate
from operations.children import Child
from operations.ports import free_port
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import stays, wait_until
from tests.support.webhook_server import hooks  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


class NotifierThread:
    """``standalone.serve`` on an event loop in a thread (in-process: it shares chdb with the test's API)."""

    def __init__(self, settings):
        self.settings, self.loop = settings, asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await standalone.serve(self.settings, self.stop_event)

        self.loop.run_until_complete(main())

    def start(self) -> NotifierThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


def test_an_api_without_a_notifier_hands_redeliveries_to_the_standalone_one(make_settings, add_seller, hooks):
    ops = free_port()
    s = make_settings(dev_mode=True, notify=False, notify_poll_s=0.5, notifier_ops_port=ops, **FAST_RETRIES)
    migrate(s)
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    notifier = NotifierThread(s).start()
    try:
        assert api.app.state.notifier is None
        ready = wait_until(
            lambda: (r := _get(f"http://127.0.0.1:{ops}/readyz")) is not None and r.status_code == 200 and r,
            60,
            what="the notifier ready",
        )
        assert ready.json()["alerts_assigned"] is True and ready.json()["channels_read"] is True
        assert api.call("POST", "shop-a", "/deliveries/dl_unknown/redeliver").status_code == 404
        assert api.call("POST", "shop-a", "/webhooks", json={"url": hooks.url("/a")}).status_code == 201
        # The notifier follows the channels topic: an alert sent once it has the channel reaches it.
        send(s, alert("shop-a", "a-1"))
        wait_until(lambda: hooks.endpoints["/a"].received, 30, what="the alert delivered by the notifier")
        [done] = wait_until(lambda: api.deliveries("shop-a", status="delivered"), 30, what="delivered recorded")

        # Redelivery through the API (no notifier there): stored as pending, the notifier sends it.
        r = api.call("POST", "shop-a", f"/deliveries/{done['delivery_id']}/redeliver")
        assert r.status_code == 202 and r.json()["status"] == "pending", r.text
        wait_until(lambda: len(hooks.endpoints["/a"].received) == 2, 30, what="the redelivery sent")
        assert [x.headers["idempotency-key"] for x in hooks.endpoints["/a"].received] == ["a-1", "a-1"]
        wait_until(lambda: api.deliveries("shop-a", status="delivered"), 30, what="the redelivery recorded")
        # Once: the notifier does not take its own settled delivery up again from an older pending row.
        stays(lambda: len(hooks.endpoints["/a"].received) == 2, s.notify_poll_s * 3, what="two sends, no third")

        metrics = httpx.get(f"http://127.0.0.1:{ops}/metrics", timeout=5).text
        assert 'livemetrics_notify_stage_seconds_count{stage="post"}' in metrics
        assert httpx.get(f"http://127.0.0.1:{ops}/healthz", timeout=5).json()["service"] == "notifier"
    finally:
        notifier.stop()
        api.stop()
        api.registry.stop()


def test_the_notifier_command_delivers_and_stops_on_sigterm(make_settings, hooks, tmp_path):
    ops = free_port()
    # Its own chdb directory: embedded ClickHouse belongs to one process (the test's is this one).
    s = make_settings(dev_mode=True, notifier_ops_port=ops).model_copy(
        update={"clickhouse_dsn": f"chdb://{tmp_path / 'chdb'}"}
    )
    book = ChannelBook(s).start()
    ch, _ = new_channel("shop-a", "webhook", hooks.url("/cmd"), s.key_encryption_key.get_secret_value())
    book.add(ch)
    book.stop()
    child = Child("notifier", ["notifier"], tmp_path).start(s.child_env())
    try:
        wait_until(
            lambda: (r := _get(f"http://127.0.0.1:{ops}/readyz")) is not None and r.status_code == 200,
            90,
            what="the notifier command ready",
            alive=child.alive,
        )
        send(s, alert("shop-a", "c-1"))
        got = wait_until(lambda: hooks.endpoints.get("/cmd") and hooks.endpoints["/cmd"].received, 30, what="sent")
        assert got[0].headers["idempotency-key"] == "c-1"
        child.terminate()
        child.reap(time.monotonic() + 30)
        assert child.proc.returncode == 0, child.tail()
    finally:
        child.stop()


def test_healthz_answers_503_while_the_notifiers_event_loop_is_stuck(make_settings):
    """/healthz is served from a thread, which answered while the loop was stuck in a blocking call."""
    ops = free_port()
    s = make_settings(dev_mode=True, notify=False, notifier_ops_port=ops, loop_stale_s=1, loop_stuck_exit_s=0)
    migrate(s)
    notifier = NotifierThread(s).start()
    release = threading.Event()
    try:
        wait_until(lambda: (r := _get(f"http://127.0.0.1:{ops}/readyz")) is not None and r.status_code == 200, 60)
        assert (r := _get(f"http://127.0.0.1:{ops}/healthz")) is not None and r.status_code == 200
        notifier.loop.call_soon_threadsafe(release.wait)  # the loop's thread now sits in a lock wait
        stuck = wait_until(
            lambda: (r := _get(f"http://127.0.0.1:{ops}/healthz")) is not None and r.status_code == 503 and r,
            15,
            what="/healthz 503",
        )
        assert stuck.json()["status"] == "stuck" and stuck.json()["service"] == "notifier"
        release.set()
        wait_until(lambda: (r := _get(f"http://127.0.0.1:{ops}/healthz")) is not None and r.status_code == 200, 15)
    finally:
        release.set()
        notifier.stop()
