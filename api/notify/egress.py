"""The HTTP session webhooks are POSTed with, and the resolver that makes its connections go to public
addresses only (outside dev mode).

targets.py checks a webhook's host before each delivery, but the POST resolves the name again: a name
whose answer changes in between (DNS rebinding, a TTL of 0) would pass the check with a public address
and be connected to a private one. The resolver here checks the very addresses the connection is then
made to, so there is no second lookup to win. A refused name fails the attempt as a connection error
naming the address. An egress proxy the environment names (HTTPS_PROXY, as aiohttp's trust_env reads
it) is usually on our own network: it is resolved unchecked, and then it, not us, resolves the webhook's
host (the check before the delivery still runs; the proxy's own rules should refuse private targets).

The session does not trust the environment itself (``trust_env=False``): aiohttp's ``trust_env`` also
puts the ``~/.netrc`` (or ``$NETRC``) credentials for the request's host on every request, its ``default``
entry for any host, so a deployment's netrc went, as ``Authorization: Basic``, to whatever host a seller
named. The proxy the environment names is found per request instead (``proxy_for``), as aiohttp finds it.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from urllib.parse import urlsplit
from urllib.request import getproxies

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.helpers import get_env_proxy_for_url
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from api.notify.targets import forbidden
from livemetrics.settings import Settings

CONNECT_DNS_THREADS = 16  # webhook host names resolved at once for the connections themselves


class _PoolLookups:
    """What ``ThreadedResolver`` asks of its loop (``getaddrinfo``, ``getnameinfo``), run in a pool of our
    own instead of the loop's default executor. That executor (6 threads on 2 cores) also runs every
    ``asyncio.to_thread`` of the API process (reports, payment errors, the notifier's ClickHouse writes):
    a seller's name whose DNS server answers slowly (each lookup up to the resolver's timeouts, ~10-30 s,
    the thread held after aiohttp's own timeout) held those threads and stalled every seller's reports."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: ThreadPoolExecutor):
        self._loop, self._pool = loop, pool

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):  # noqa: A002 - asyncio's names
        return await self._loop.run_in_executor(
            self._pool, functools.partial(socket.getaddrinfo, host, port, family, type, proto, flags)
        )

    async def getnameinfo(self, sockaddr, flags=0):
        return await self._loop.run_in_executor(self._pool, socket.getnameinfo, sockaddr, flags)


class PublicOnlyResolver(ThreadedResolver):
    """getaddrinfo in a thread of its own pool (not the loop's default executor: ``_PoolLookups``), then,
    with ``check``, every address checked: one that is not public fails the whole lookup (OSError, which
    aiohttp reports as a connection error)."""

    def __init__(self, unchecked_hosts: frozenset[str] = frozenset(), check: bool = True):
        super().__init__()
        self.pool = ThreadPoolExecutor(CONNECT_DNS_THREADS, thread_name_prefix="notify-connect-dns")
        self._loop = _PoolLookups(self._loop, self.pool)  # type: ignore[assignment]  # ThreadedResolver's lookups
        self.unchecked_hosts = unchecked_hosts
        self.check = check

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await super().resolve(host, port, family)
        if not self.check or host.rstrip(".").lower() in self.unchecked_hosts:
            return infos
        for info in infos:
            why = forbidden(ipaddress.ip_address(info["host"].split("%")[0]))
            if why:
                raise OSError(  # (errno, text): aiohttp's error shows the text
                    errno.EACCES,
                    f"{host!r} resolves to {info['host']}, not a public address ({why}): webhooks go to "
                    "public addresses only",
                )
        return infos


def proxy_hosts() -> frozenset[str]:
    """The host names of the proxies the environment configures (what aiohttp's trust_env uses)."""
    return frozenset((urlsplit(url).hostname or "").lower() for url in getproxies().values() if "://" in url)


_PROXY_ENV = tuple(n for v in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for n in (v, v.upper())) + (
    "NETRC",
    "HOME",
    "REQUEST_METHOD",
)


def proxy_for(url: str) -> dict:
    """The ``proxy`` / ``proxy_auth`` arguments of a POST to ``url``: the proxy the environment names for it
    (HTTPS_PROXY / HTTP_PROXY, NO_PROXY honoured; the proxy's credentials from its URL or the netrc entry of
    the proxy's host), exactly as aiohttp's ``trust_env`` finds it; {} for none. Kept per endpoint and
    environment (finding it reads the environment and the netrc file: ~170 us, more than a POST's CPU)."""
    parts = urlsplit(url)
    return dict(_proxy_for(parts.scheme, parts.netloc, tuple(map(os.environ.get, _PROXY_ENV))))


@lru_cache(maxsize=4096)
def _proxy_for(scheme: str, netloc: str, _env: tuple) -> tuple:
    try:
        proxy, auth = get_env_proxy_for_url(URL.build(scheme=scheme, authority=netloc))
    except LookupError:
        return ()
    return (("proxy", proxy), ("proxy_auth", auth))


def webhook_session(settings: Settings) -> aiohttp.ClientSession:
    """One session for every webhook POST of a notifier: connections kept open per endpoint (as many as the
    sends in flight), no DNS cache (each connection resolves and checks its name); each POST names its proxy
    (``proxy_for``): the session does not trust the environment, whose netrc it would send to any host."""
    resolver = PublicOnlyResolver(proxy_hosts(), check=not settings.dev_mode)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            # Both lanes' sends and the attempts moved off the main slots after notify_main_hold_s, which keep
            # their connection (at most notify_concurrency: dispatch.py). With room for two lanes only, 100 moved
            # attempts left new ones waiting here for a connection, their main slots held, until the timeout.
            limit=2 * settings.notify_concurrency + settings.notify_slow_lane,
            limit_per_host=0,
            keepalive_timeout=30,
            use_dns_cache=False,
            resolver=resolver,
        ),
        timeout=aiohttp.ClientTimeout(total=settings.notify_timeout_s),
        trust_env=False,  # the proxy per POST (proxy_for); trust_env would also send netrc credentials
    )
