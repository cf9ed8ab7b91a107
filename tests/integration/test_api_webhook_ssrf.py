"""SSRF through the webhook routes of a running API (real Kafka, chdb; dev mode off): a host that is an
internal address written the way only a resolver reads it, or a name that resolves to one now, is
refused when the webhook is added, with the reason; a name that does not resolve yet is taken (the check
before every delivery and the connection's own check refuse it later if it then points inside:
tests/unit/api/test_notify_ssrf.py)."""

from __future__ import annotations

import ipaddress
import socket

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
