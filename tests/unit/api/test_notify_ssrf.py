"""SSRF through a seller's webhook (docs/security.md, Webhooks): addresses written the way only a resolver
understands are refused when the webhook is added, and the connection itself goes only to public
addresses (checked on the addresses the connection uses, so a name that changes its answer between our
check and the POST, DNS rebinding, still cannot reach this machine or our network)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest

from api.notify import dispatch, egress
from api.notify.channels import new_channel
from api.notify.targets import TargetError, check_webhook_url
from clickhouse.notify_deliveries import Delivery
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


def test_a_seller_whose_names_resolve_slowly_holds_up_no_other_sellers_delivery(monkeypatch):
    """Two sellers' 20 webhooks whose DNS never answers took every thread of the notifier's DNS pool (16),
    and a third seller's delivery waited behind them; now a seller holds at most DNS_PER_SELLER of them and
    a lookup fails the attempt after notify_timeout_s."""
    real = dispatch.check_resolves_public
    release, entered = threading.Event(), []
    counted, held, most = threading.Lock(), {"slow-a": 0, "slow-b": 0}, {"slow-a": 0, "slow-b": 0}

    def check(url, dev_mode):
        if "slow-" in url:
            seller = url.split(".")[1]
            with counted:
                entered.append(url)
                held[seller] += 1
                most[seller] = max(most[seller], held[seller])
            release.wait(30)  # a DNS server that does not answer (until the test ends)
            with counted:
                held[seller] -= 1
        return real(url, dev_mode)

    monkeypatch.setattr(dispatch, "check_resolves_public", check)
    server = _Listener()
    kek = Settings().key_encryption_key.get_secret_value()

    def delivery(ch) -> Delivery:
        return Delivery(
            ch.seller_id, "dl_" + ch.channel_id, "al-1", "payment_failed", ch.channel_id, ch.target, b"{}", 0
        )

    async def scenario():
        d = dispatch.Dispatcher(Settings(dev_mode=True, notify_timeout_s=1), channels=None)  # type: ignore[arg-type]
        hostile = []
        for seller in ("slow-a", "slow-b"):
            for i in range(10):
                ch, _ = new_channel(seller, "webhook", f"http://slow-{i}.{seller}.example/hook", kek)
                hostile.append(asyncio.create_task(d._post(ch, delivery(ch))))
        while len(entered) < 2 * dispatch.DNS_PER_SELLER:
            await asyncio.sleep(0.01)  # polls until the slow lookups hold their threads (a thread signals nothing)
        ch, _ = new_channel("shop", "webhook", f"http://localhost:{server.port}/hook", kek)
        try:
            fine = await asyncio.wait_for(d._post(ch, delivery(ch)), 5)
            deadline = time.monotonic() + 5
            # every hostile attempt ends without the release: the first lookups by their timeout (1 s), the
            # rest waiting for a slot those hung threads still hold. (Waiting for only 4 of them ended too early
            # once: the waiters' 1-s deadlines can come before the lookups' own, and a lookup released then ends
            # another way.)
            while not all(t.done() for t in hostile) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # polls for the attempts' 1-s timeouts
        finally:
            release.set()
            errors = await asyncio.gather(*hostile)
            await d.close()
        return fine, errors

    try:
        fine, errors = asyncio.run(scenario())
    finally:
        release.set()
        server.sock.close()
    assert fine is None and server.connections == 1  # delivered while the slow ones waited
    # each seller's lookups took at most DNS_PER_SELLER threads at once, each ended by the timeout; the others
    # waited for one of its slots and ended too. (Which message an attempt gets at the 1-s boundary is a race: a
    # slot freed just before a waiter's deadline lets it in, and its lookup then times out; a CI run counted 6
    # lookups timed out where an exact count of 4 was asserted.)
    assert most == {"slow-a": dispatch.DNS_PER_SELLER, "slow-b": dispatch.DNS_PER_SELLER}
    timed_out = sum("did not resolve within 1 s" in (e or "") for e in errors)
    not_looked_up = sum("was not looked up within 1 s" in (e or "") for e in errors)
    assert timed_out >= 2 * dispatch.DNS_PER_SELLER and timed_out + not_looked_up == len(errors) == 20


def test_the_connections_lookups_do_not_wait_for_the_loops_default_executor():
    """aiohttp's resolver looked names up in the loop's default executor (6 threads on 2 cores), which every
    asyncio.to_thread of the API shares: slow webhook names there stalled reports; its own pool now."""
    server = _Listener()
    release = threading.Event()

    async def scenario():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(1))
        busy = loop.run_in_executor(None, release.wait, 30)  # the default executor's one thread, held
        try:
            return await asyncio.wait_for(_post(Settings(dev_mode=True), f"http://localhost:{server.port}/hook"), 5)
        finally:
            release.set()
            await busy

    try:
        assert asyncio.run(scenario()) == 204
    finally:
        release.set()
        server.sock.close()
