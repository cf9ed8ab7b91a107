"""Web origins of browser keys: what ``sellers add --origin`` accepts, and the origin a request comes from.

An origin is ``scheme://host[:port]`` as browsers send it in the ``Origin`` header: lower case, no path,
the default port left out, so that a plain string compare decides. No wildcards: a seller lists each
origin (``https://shop.example`` and ``https://www.shop.example`` are two).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str) -> str:
    """``text`` as a canonical origin; ``ValueError`` naming what is wrong with it."""
    raw = (text or "").strip()
    try:
        u = urlsplit(raw)
        port = u.port
    except ValueError as exc:
        raise ValueError(f"origin {text!r} is not a URL ({exc})") from None
    if u.scheme.lower() not in _DEFAULT_PORTS:
        raise ValueError(f"origin {text!r} must start with https:// (or http://), e.g. https://shop.example")
    if not u.hostname:
        raise ValueError(f"origin {text!r} has no host name")
    if u.path not in ("", "/") or u.query or u.fragment or u.username is not None:
        raise ValueError(f"origin {text!r} must be only scheme://host[:port], without a path, query or user")
    if "*" in u.hostname:
        raise ValueError(f"origin {text!r}: wildcards are not supported, list each origin")
    scheme = u.scheme.lower()
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname  # urlsplit lower-cases and unbrackets IPv6
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


@lru_cache(maxsize=4096)
def _origin_of(url: str) -> str | None:
    """The origin of an ``Origin`` value or a ``Referer`` URL (its path dropped), None when it has none.
    Cached: a storefront's pages send the same few values over and over."""
    try:
        u = urlsplit(url.strip())
        return normalize_origin(f"{u.scheme}://{u.netloc.rpartition('@')[2]}")
    except ValueError:
        return None


def request_origin(origin: str | None, referer: str | None) -> str | None:
    """Where a request comes from: its ``Origin`` header, else the origin of its ``Referer``; None when
    neither names one (``Origin: null`` from a sandboxed frame or a file:// page names none)."""
    if origin and origin != "null":
        return _origin_of(origin)
    return _origin_of(referer) if referer else None
