"""Webhook URLs and email addresses a seller may add (SSRF: no way into our own network outside dev mode)."""

from __future__ import annotations

import pytest

from api.notify.targets import TargetError, check_email, check_resolves_public, check_webhook_url

REFUSED = {
    "http://shop.example/hook": "must use https",
    "https://127.0.0.1/hook": "loopback",
    "https://[::1]:8443/": "loopback",
    "https://[::ffff:127.0.0.1]/": "loopback",
    "https://10.0.0.5/": "private",
    "https://192.168.1.1/": "private",
    "https://169.254.169.254/latest/meta-data": "link-local",
    "https://0.0.0.0/": "unspecified",
    "https://224.0.0.1/": "multicast",
    "https://localhost/hook": "this machine",
    "https://api.localhost/hook": "this machine",
    "https://user:pw@shop.example/": "user or password",
    "ftp://shop.example/": "https://host/path",
    "https:///nohost": "https://host/path",
    "https://shop.example:99999/": "not a URL",
}


@pytest.mark.parametrize("url", sorted(REFUSED))
def test_refused_outside_dev_mode_with_the_reason(url):
    with pytest.raises(TargetError, match=REFUSED[url]):
        check_webhook_url(url, dev_mode=False)


def test_public_https_urls_are_accepted():
    assert check_webhook_url("https://hooks.shop.example/lm?x=1", False) == "https://hooks.shop.example/lm?x=1"
    assert check_webhook_url("https://93.184.216.34:8443/", False) == "https://93.184.216.34:8443/"


def test_dev_mode_allows_plain_http_to_this_machine_but_not_credentials():
    assert check_webhook_url("http://127.0.0.1:9000/hook", True)
    with pytest.raises(TargetError, match="user or password"):
        check_webhook_url("http://u:p@127.0.0.1:9000/", True)


def test_a_name_that_resolves_to_loopback_is_refused_before_delivery():
    # The check before each delivery resolves the name whatever it is (localhost stands for a public-looking
    # name whose answer changed since it was added; 2130706433, 127.0.0.1 as one number, is refused when
    # added: tests/unit/api/test_notify_ssrf.py).
    for url in ("https://localhost/hook", "https://2130706433/hook"):
        with pytest.raises(TargetError, match=r"resolves to 127\.0\.0\.1, not a public address \(loopback\)"):
            check_resolves_public(url, False)
        check_resolves_public(url, True)


@pytest.mark.parametrize("address", ["a@b.example", "first.last+tag@shop.example.co.uk"])
def test_email_accepted(address):
    assert check_email(f" {address} ") == address


@pytest.mark.parametrize(
    "address", ["nobody", "a@b", "a b@shop.example", "a@@shop.example", "x" * 65 + "@shop.example"]
)
def test_email_refused(address):
    with pytest.raises(TargetError, match="not an email address"):
        check_email(address)
