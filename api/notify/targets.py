"""Is a webhook URL or an email address one we may send to? Clear reasons when not.

SSRF: a seller must not make our servers POST into our own network. Outside dev mode a webhook must be
``https`` and its host must not be, or resolve to, a loopback, private, link-local (cloud metadata),
multicast, reserved or unspecified address. Checked when the channel is added, and again before every
delivery (a name's addresses can change after it was checked: DNS rebinding). Limit: the POST resolves the
name again, so a name that changes its answer within that moment still could (docs/notifications.md).
Redirects are never followed (a 3xx is a failed attempt), so a public URL cannot bounce us inside.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

MAX_URL = 2048
# A pragmatic address check (RFC 5321 lengths, one @, a dotted domain): the SMTP server has the last word.
_EMAIL = re.compile(
    r"^[^\s@<>()\[\],;:\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


class TargetError(ValueError):
    """Why a webhook URL or an email address is refused."""


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for attr, what in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, attr):
            return what
    return None if ip.is_global else "non-public"


def check_webhook_url(url: str, dev_mode: bool) -> str:
    """The URL as given when it may be used, else ``TargetError``. A name is not resolved here (a
    DNS answer can change; ``check_resolves_public`` runs before each delivery); a literal address is checked."""
    if len(url) > MAX_URL:
        raise TargetError(f"the URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError as exc:
        raise TargetError(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise TargetError("the URL must be https://host/path")
    if parts.scheme != "https" and not dev_mode:
        raise TargetError("the URL must use https (plain http only in dev mode): alerts carry customer data")
    if parts.username or parts.password:
        raise TargetError("the URL must not carry a user or password: verify our signature instead")
    if dev_mode:
        return url
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host.rstrip(".").lower() in ("localhost",) or host.rstrip(".").lower().endswith(".localhost"):
            raise TargetError(f"the host {host!r} is this machine: use a public address") from None
        return url
    why = _forbidden(ip)
    if why:
        raise TargetError(f"the host {host} is not a public address ({why}): webhooks go to public addresses only")
    return url


def host_is_address(url: str) -> bool:
    """Whether the URL names an IP address (nothing to resolve: checking it takes no thread)."""
    try:
        ipaddress.ip_address((urlsplit(url).hostname or "").split("%")[0])
    except ValueError:
        return False
    return True


def check_resolves_public(url: str, dev_mode: bool) -> None:
    """``TargetError`` unless the URL's host resolves, to public addresses only (outside dev mode)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host_is_address(url):
        why = None if dev_mode else _forbidden(ipaddress.ip_address(host.split("%")[0]))
        if why:
            raise TargetError(f"the host {host} is not a public address ({why}): webhooks go to public addresses only")
        return
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise TargetError(f"the host {host!r} does not resolve: {exc.strerror}") from None
    addresses = [info[4][0] for info in infos]
    if not dev_mode:
        for a in addresses:
            why = _forbidden(ipaddress.ip_address(a.split("%")[0]))
            if why:
                raise TargetError(
                    f"the host {host!r} resolves to {a}, not a public address ({why}): webhooks go "
                    "to public addresses only"
                )


def check_email(address: str) -> str:
    address = address.strip()
    if len(address) > 254 or not _EMAIL.match(address):
        raise TargetError(f"{address[:80]!r} is not an email address (name@example.com)")
    return address
