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
    ended: list[str] = []  # the hanging lookups that ended (their 30 s over, or the test's end)
    real = notifications.check_resolves_public

    def check(url, dev_mode):
        if ".never-answers." in url:
            asked.release()
            answer.wait(30)  # the seller's name server never answers (until the test ends)
            ended.append(url)
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
        for _ in range(2):  # lookups under way: one per seller (LOOKUPS_PER_SELLER)
            assert asked.acquire(timeout=10)
        time.sleep(0.5)  # time for more to start if threads allow (nothing signals a lookup that does not start)
        started = time.monotonic()
        r = httpx.get(
            f"{api.server.url}/v1/sellers/shop-c/reports/hourly",
            headers={"Authorization": f"Bearer {tokens['shop-c']}"},
            timeout=30,
        )
        took = time.monotonic() - started
        hanging = not ended  # the report was answered while every lookup still hung
        codes = [f.result(timeout=30).status_code for f in adds]
    finally:
        answer.set()
        pool.shutdown()
        api.stop()
        api.registry.stop()
    # old code: the report waited until the lookups ended (30 s here); its time is no signal on a loaded machine
    assert r.status_code == 200 and hanging, (r.status_code, took, ended)
    assert codes == [201] * 8, codes  # taken after notify_timeout_s, to be checked at every delivery


def test_one_sellers_names_that_never_answer_delay_no_other_sellers_add(make_settings, add_seller, monkeypatch):
    """A seller (its read token is all it takes) adding webhooks whose name server never answers held every
    thread of the add's lookup pool (4) for ~30 s: another seller's add waited notify_timeout_s and was taken
    unchecked, even a host that resolves inside (seen failing before the change: 201 after 2.0 s). Now each
    seller has LOOKUPS_PER_SELLER of them: the other seller's add is checked at once and refused by name; the
    hostile seller's own adds wait for its slot and are taken after the timeout, as before."""
    from concurrent.futures import ThreadPoolExecutor

    from api.routes import notifications

    s = make_settings(notify=False, notify_timeout_s=2.0)
    tokens = {n: add_seller(s, n)[1] for n in ("shop-a", "shop-b")}
    answer, asked, at_once, most = threading.Event(), threading.Semaphore(0), [0], [0]
    lock = threading.Lock()
    real = notifications.check_resolves_public

    def check(url, dev_mode):
        if ".never-answers." in url:
            with lock:
                at_once[0] += 1
                most[0] = max(most[0], at_once[0])
            asked.release()
            answer.wait(30)  # the seller's name server never answers (until the test ends)
            with lock:
                at_once[0] -= 1
        return real(url, dev_mode)

    entered, checked_url = threading.Semaphore(0), notifications.check_webhook_url

    def check_url(url, dev_mode):  # the add's last step before it waits for a lookup (no await in between)
        if ".never-answers." in url:
            entered.release()
        return checked_url(url, dev_mode)

    monkeypatch.setattr(notifications, "check_resolves_public", check)
    monkeypatch.setattr(notifications, "check_webhook_url", check_url)
    api = Api(s, tokens)
    pool = ThreadPoolExecutor(notifications.LOOKUP_THREADS + 2)
    me = socket.gethostname()  # resolves to this machine: never public here (the first test checks it)
    try:
        hostile = [
            pool.submit(api.call, "POST", "shop-a", "/webhooks", json={"url": f"https://h{i}.never-answers.example/x"})
            for i in range(notifications.LOOKUP_THREADS + 2)
        ]
        assert asked.acquire(timeout=10)  # the hostile seller's first lookup hangs
        for _ in hostile:  # and every hostile add waits for a lookup (a thread or, now, its seller's slot)
            assert entered.acquire(timeout=10)
        started = time.monotonic()
        r = api.call("POST", "shop-b", "/webhooks", json={"url": f"https://{me}/hook"})
        took = time.monotonic() - started
        codes = [f.result(timeout=30).status_code for f in hostile]
    finally:
        answer.set()
        pool.shutdown()
        api.stop()
        api.registry.stop()
    assert r.status_code == 422 and "not a public address" in r.json()["detail"], (r.status_code, r.text, took)
    assert took < 1.5, took  # checked at once, not after notify_timeout_s
    assert most[0] == notifications.LOOKUPS_PER_SELLER, most  # the hostile seller's lookups at once
    assert codes == [201] * len(hostile), codes  # its own adds: taken after the timeout, checked at delivery
