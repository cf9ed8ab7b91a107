"""What the gateway adds to every event: client IP (through trusted proxies only), a daily-salted
IP hash, the parsed user agent (ua-parser) and a bot flag (crawlerdetect)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import datetime, timezone
from functools import lru_cache

from crawlerdetect import CrawlerDetect
from ua_parser import parse as parse_ua

_crawlers = CrawlerDetect()


@lru_cache(maxsize=8192)
def user_agent_info(ua: str) -> tuple[str, str, str, bool]:
    """(browser, os, device, is_bot) for a User-Agent header."""
    if not ua:
        return "", "", "", True  # real browsers always send one
    r = parse_ua(ua)
    browser = r.user_agent.family if r.user_agent else "Other"
    os_ = r.os.family if r.os else "Other"
    if r.device and r.device.family not in ("Other", ""):
        device = "mobile" if r.device.family not in ("Spider",) else "bot"
        if "iPad" in ua or "Tablet" in ua:
            device = "tablet"
    else:
        device = "desktop"
    is_bot = _crawlers.isCrawler(ua) or (r.device is not None and r.device.family == "Spider")
    if is_bot:
        device = "bot"
    return browser, os_, device, bool(is_bot)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: list[str]) -> str | None:
    """The socket peer, or the right-most untrusted X-Forwarded-For hop when the peer is a trusted proxy."""
    if not peer:
        return None
    nets = _nets(tuple(trusted))
    if not forwarded_for or not _in(peer, nets):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _in(hop, nets):
            return hop
    return peer


@lru_cache(maxsize=64)
def _nets(trusted: tuple[str, ...]):
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _in(ip: str, nets) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in n for n in nets)


def ip_hash(ip: str | None, secret: str, now_ms: int) -> str:
    """A salted hash that changes every UTC day, so visitors cannot be followed across days."""
    if not ip:
        return ""
    return hashlib.blake2b(ip.encode(), key=_day_salt(secret, now_ms // 86_400_000), digest_size=12).hexdigest()


@lru_cache(maxsize=4)
def _day_salt(secret: str, day_number: int) -> bytes:
    """The salt of one UTC day (days since the epoch): computed once a day, not on every request."""
    day = datetime.fromtimestamp(day_number * 86_400, tz=timezone.utc).strftime("%Y-%m-%d")
    return hmac.new(secret.encode(), day.encode(), hashlib.sha256).digest()[:32]
