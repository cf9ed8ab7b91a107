"""SSRF through the webhook routes of a running API (real Kafka, chdb; dev mode off): a host that is an
internal address written the way only a resolver reads it, or a name that resolves to one now, is
refused when the webhook is added, with the reason; a name that does not resolve yet is taken (the check
before every delivery and the connection's own check refuse it later if it then points inside:
tests/unit/api/test_notify_ssrf.py)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import httpx
import pytest

from api.notify.targets import forbidden
from tests.support.notify_api import Api

pytestmark = pytest.mark.integration


def test_internal_hosts_are_refused_when_a_webhook_is_added(make_settings, add_seller):
    s = make_settings()  # dev mode off: the production rules
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    # This machine's own name: every machine resolves it, to itself or its network (never public here).
    me = socket.gethostname()
    mine = {info[4][0] for info in socket.getaddrinfo(me, 443, type=socket.SOCK_STREAM)}
    assert all(forbidden(ipaddress.ip_address(a.split("%")[0])) for a in mine), (me, mine)
    try:
        for url, why in (
            ("https://2130706433/hook", "not a public address (loopback)"),
            ("https://0xa9fea9fe/latest/meta-data", "not a public address (link-local)"),
            ("https://[2002:a00:1::1]/", "not a public address (private)"),
            (f"https://{me}/hook", "not a public address"),
            ("https://exa mple.com/", "not a host name"),
        ):
            r = api.call("POST", "shop-a", "/webhooks", json={"url": url})
            assert r.status_code == 422 and why in r.json()["detail"], (url, r.text)
        assert api.call("GET", "shop-a", "/channels").json() == {"channels": []}
        # A name without an address yet is taken: it may be set up after the webhook.
        r = api.call("POST", "shop-a", "/webhooks", json={"url": "https://hooks.shop.invalid/lm"})
        assert r.status_code == 201, r.text
    finally:
        api.stop()
        api.registry.stop()


def test_webhook_adds_whose_names_never_resolve_hold_none_of_the_reports_threads(
    make_settings, add_seller, monkeypatch
):
    """Adding a webhook resolves its host name (dev mode off) with asyncio.to_thread: a thread of the API's
    default executor (6 on 2 cores), which every seller's report reads ClickHouse in, held as long as the
    seller's own name server makes the system resolver wait (~10-30 s for one that never answers). Two
    sellers adding such webhooks (3 at a time each) held all of it, and a third seller's report waited. Now
    the lookups run in a pool of their own and the add waits for one at most notify_timeout_s (then it is
    taken, as a name without an address is: every delivery checks it again)."""
    from concurrent.futures import ThreadPoolExecutor

    from api.routes import notifications
    from clickhouse.migrate import migrate

    s = make_settings(notify=False, notify_timeout_s=2.0)
    tokens = {n: add_seller(s, n)[1] for n in ("shop-a", "shop-b", "shop-c")}
    migrate(s)
    answer, asked = threading.Event(), threading.Semaphore(0)
    real = notifications.check_resolves_public

    def check(url, dev_mode):
        if ".never-answers." in url:
            asked.release()
            answer.wait(30)  # the seller's name server never answers (until the test ends)
        return real(url, dev_mode)

    monkeypatch.setattr(notifications, "check_resolves_public", check)
    api = Api(s, tokens)
    pool = ThreadPoolExecutor(8)
    try:
        adds = [
            pool.submit(api.call, "POST", seller, "/webhooks", json={"url": f"https://h{i}.never-answers.example/x"})
            for seller in ("shop-a", "shop-b")
            for i in range(4)
        ]
        for _ in range(4):  # lookups under way
            assert asked.acquire(timeout=10)
        time.sleep(0.5)  # time for more to start if threads allow (nothing signals a lookup that does not start)
        started = time.monotonic()
        r = httpx.get(
            f"{api.server.url}/v1/sellers/shop-c/reports/hourly",
            headers={"Authorization": f"Bearer {tokens['shop-c']}"},
            timeout=30,
        )
        took = time.monotonic() - started
        codes = [f.result(timeout=30).status_code for f in adds]
    finally:
        answer.set()
        pool.shutdown()
        api.stop()
        api.registry.stop()
    assert r.status_code == 200 and took < 1.5, (r.status_code, took)  # old code: until the lookups ended
    assert codes == [201] * 8, codes  # taken after notify_timeout_s, to be checked at every delivery
