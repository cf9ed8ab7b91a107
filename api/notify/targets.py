"""Is a webhook URL or an email address one we may send to? Clear reasons when not.

SSRF: a seller must not make our servers POST into our own network. Outside dev mode a webhook must be
``https`` and its host must not be, or resolve to, a loopback, private, link-local (cloud metadata),
multicast, reserved or unspecified address. Checked when the channel is added, and again before every
delivery (a name's addresses can change after it was checked: DNS rebinding). Limit: the POST resolves the
name again, so a name that changes its answer within that moment still could (docs/notifications.md).
Redirects are never followed (a 3xx is a failed attempt), so a public URL cannot bounce us inside.
Host text that the C resolver reads as an address (``2130706433``, ``0x7f000001``, ``127.1``: inet_aton's
old forms) is checked as that address, and 6to4 and Teredo addresses as the IPv4 address they carry.
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


# A host name: letters, digits, '-' and '_' in dot-separated labels (IDNs as punycode); anything else in
# a host (a space, %, a backslash) is no name a resolver should be handed.
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?$")
# What inet_aton (and so getaddrinfo) reads as an IPv4 address: 1 to 4 parts, decimal, octal or hex.
_LEGACY_V4 = re.compile(r"^(?:0[xX][0-9A-Fa-f]*|[0-9]+)(?:\.(?:0[xX][0-9A-Fa-f]*|[0-9]+)){0,3}\.?$")


class TargetError(ValueError):
    """Why a webhook URL or an email address is refused."""


class Unresolvable(TargetError):
    """The host name has no address (now): not refused when a webhook is added, a failed attempt later."""


def as_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL's host names without a DNS lookup: a literal, or one of inet_aton's old IPv4
    forms, which the system resolver answers itself (``2130706433`` is 127.0.0.1); None for a name."""
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    if _LEGACY_V4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is no address a webhook may go to (loopback, private, ...), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return "site-local"
        # An IPv4 address carried inside: mapped (::ffff:a.b.c.d), 6to4 (2002::/16) or Teredo's client.
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            ip = inner
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
    ip = as_address(host)
    if ip is None:
        if not _HOSTNAME.match(host):
            raise TargetError(f"the host {host[:100]!r} is not a host name (letters, digits, '-', dots)")
        if host.rstrip(".").lower() in ("localhost",) or host.rstrip(".").lower().endswith(".localhost"):
            raise TargetError(f"the host {host!r} is this machine: use a public address")
        return url
    why = forbidden(ip)
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
        why = None if dev_mode else forbidden(ipaddress.ip_address(host.split("%")[0]))
        if why:
            raise TargetError(f"the host {host} is not a public address ({why}): webhooks go to public addresses only")
        return
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise Unresolvable(f"the host {host!r} does not resolve: {exc.strerror}") from None
    addresses = [info[4][0] for info in infos]
    if not dev_mode:
        for a in addresses:
            why = forbidden(ipaddress.ip_address(a.split("%")[0]))
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
