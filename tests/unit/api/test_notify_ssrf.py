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
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


async def _post(settings: Settings, url: str) -> int:
    async with egress.webhook_session(settings) as http, http.post(url, data=b"{}", allow_redirects=False) as r:
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
