"""What the gateway adds to every event: client IP (through trusted proxies only), an IP hash with a
random daily salt, the parsed user agent (ua-parser) and a bot flag (crawlerdetect)."""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache

from crawlerdetect import CrawlerDetect
from ua_parser import parse as parse_ua

from producers.gateway.ip_salts import DAY_MS, DaySalts

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


def ip_hash(ip: str | None, salts: DaySalts, now_ms: int) -> str:
    """A hash keyed by the UTC day's random salt (producers/gateway/ip_salts.py), so visitors cannot be
    followed across days, and a past day's hashes cannot be reversed once its salt is destroyed."""
    if not ip:
        return ""
    return hashlib.blake2b(ip.encode(), key=salts.day_key(now_ms // DAY_MS), digest_size=12).hexdigest()
