"""SSRF through a seller's webhook (docs/security.md, Webhooks): addresses written the way only a resolver
understands are refused when the webhook is added, and the connection itself goes only to public
addresses (checked on the addresses the connection uses, so a name that changes its answer between our
check and the POST, DNS rebinding, still cannot reach this machine or our network)."""

from __future__ import annotations

import asyncio
import socket
import threading

import aiohttp
import pytest

from api.notify import egress
from api.notify.targets import TargetError, check_webhook_url
from livemetrics.settings import Settings

# Each is 127.0.0.1, 10.0.0.1 or 169.254.169.254 to the C resolver (inet_aton's old forms) or embeds one
# (6to4, Teredo), or is a deprecated local scope, while ipaddress calls the plain text a name or public.
REFUSED_AT_ADD = {
    "https://2130706433/hook": "loopback",
    "https://0x7f000001/hook": "loopback",
    "https://0177.0.0.1/hook": "loopback",
    "https://127.1/hook": "loopback",
    "https://10.1/": "private",
    "https://0xa9fea9fe/latest/meta-data": "link-local",
    "https://[2002:7f00:1::]/": "loopback",
    "https://[2002:a00:1::1]/": "private",
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/": "loopback",  # Teredo, its client 127.0.0.1
    "https://[fec0::1]/": "site-local",
    "https://exa mple.com/": "not a host name",
    "https://exa%20mple.com/": "not a host name",
}


@pytest.mark.parametrize("url", sorted(REFUSED_AT_ADD))
def test_addresses_only_a_resolver_understands_are_refused_when_added(url):
    with pytest.raises(TargetError, match=REFUSED_AT_ADD[url]):
        check_webhook_url(url, dev_mode=False)


def test_public_names_and_addresses_still_pass():
    for url in ("https://hooks.shop.example/lm", "https://93.184.216.34/", "https://[2606:4700::1111]/x"):
        assert check_webhook_url(url, dev_mode=False) == url


class _Listener:
    """A real TCP server on 127.0.0.1 that answers 204 and counts its connections."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []  # each request's head as received
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self.requests.append(conn.recv(65536))
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


async def _post(settings: Settings, url: str) -> int:
    """A POST as the notifier makes it (api/notify/dispatch.py): its session, no redirects, its proxy."""
    async with (
        egress.webhook_session(settings) as http,
        http.post(url, data=b"{}", allow_redirects=False, **egress.proxy_for(url)) as r,
    ):
        return r.status


def test_the_connection_goes_only_to_public_addresses_whatever_the_name_resolves_to_then():
    # "localhost" stands for any name whose answer changed after the pre-delivery check: the session's
    # resolver checks the addresses it hands to the connection.
    server = _Listener()
    try:
        url = f"http://localhost:{server.port}/hook"
        with pytest.raises(aiohttp.ClientConnectorError, match=r"resolves to 127\.0\.0\.1, not a public address"):
            asyncio.run(_post(Settings(), url))
        assert server.connections == 0
        assert asyncio.run(_post(Settings(dev_mode=True), url)) == 204  # dev mode: this machine is fine
        assert server.connections == 1
    finally:
        server.sock.close()


_PROXY_VARS = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)


def _headers(request: bytes) -> dict[str, str]:
    lines = request.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}


def test_the_deployments_netrc_goes_to_no_webhook(monkeypatch, tmp_path):
    """aiohttp's trust_env puts the netrc's credentials for the request's host on every request, its
    `default` entry for any host: a seller's webhook received the API host's login as Authorization: Basic."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("default login deploy password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server = _Listener()
    try:
        assert asyncio.run(_post(Settings(dev_mode=True), f"http://127.0.0.1:{server.port}/hook")) == 204
        assert "authorization" not in _headers(server.requests[0]), server.requests[0]
    finally:
        server.sock.close()


def test_the_environments_proxy_still_carries_the_webhooks_with_its_own_netrc_login(monkeypatch, tmp_path):
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    proxy = _Listener()  # answers 204 to what it is asked to forward
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login proxyuser password proxypass\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    try:
        assert asyncio.run(_post(Settings(dev_mode=True), "http://hooks.example.test/hook")) == 204
        head = proxy.requests[0]
        assert head.startswith(b"POST http://hooks.example.test/hook HTTP/1.1"), head
        headers = _headers(head)
        assert headers["proxy-authorization"].startswith("Basic ") and "authorization" not in headers
        monkeypatch.setenv("NO_PROXY", "hooks.example.test")
        assert egress.proxy_for("http://hooks.example.test/hook") == {}
    finally:
        proxy.sock.close()
