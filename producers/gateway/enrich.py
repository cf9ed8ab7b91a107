"""What the gateway adds to every event: client IP (through trusted proxies only), an IP hash with a
random daily salt, the parsed user agent (ua-parser) and a bot flag (crawlerdetect)."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from functools import lru_cache

import re2
from crawlerdetect.crawlerdetect import get_compiled_exclusions_regex
from crawlerdetect.providers.crawlers import data as _CRAWLER_PATTERNS
from ua_parser import parse as parse_ua

from livemetrics.forwarded import forwarded_client
from livemetrics.once_per import OncePer
from producers.gateway.ip_salts import DAY_MS, DaySalts

log = logging.getLogger("livemetrics.gateway")

# The crawlerdetect whose module internals ``is_crawler`` reads (its crawler data and its compiled exclusions,
# not its public ``CrawlerDetect``): pyproject.toml pins exactly this one (tests/unit/test_lock_files.py),
# and the answers are compared with crawlerdetect's own (tests/unit/producers/test_gateway_user_agent_cost.py).
# After an upgrade: run those, then change both.
CRAWLERDETECT_VERSION = "0.4.2"

# What of a User-Agent header is read (and stored: ingest.USER_AGENT_KEPT). A browser's is 100-300
# characters; anyone can send a longer one, and each request whose header is new to the cache is parsed.
UA_READ = 512
_LOOK_AROUND = re.compile(r"\(\?<?[=!]")  # what RE2 cannot run (and would log an error for)


def _linear(patterns: list[str]) -> tuple[re2._Regexp, list[re.Pattern[str]]]:
    """One RE2 automaton (linear in the text) for ``patterns`` joined, case-insensitive, as crawlerdetect
    joins them; the few with a look-around (`Yandex(?!Search)`) each a ``re`` of its own."""
    opts = re2.Options()
    opts.case_sensitive = False
    opts.max_mem = 256 << 20
    other = [p for p in patterns if _LOOK_AROUND.search(p)]
    linear = [p for p in patterns if p not in other]
    try:
        joined = re2.compile("(?:" + "|".join(linear) + ")", opts)
    except re2.error:  # a later crawlerdetect with other syntax RE2 lacks (back-references): those apart
        other += [p for p in linear if not _compiles(p, opts)]
        joined = re2.compile("(?:" + "|".join(p for p in linear if p not in other) + ")", opts)
    return joined, [re.compile(p, re.IGNORECASE) for p in other]


def _compiles(pattern: str, opts: re2.Options) -> bool:
    try:
        re2.compile(pattern, opts)
    except re2.error:
        return False
    return True


# crawlerdetect's own check (``CrawlerDetect.is_crawler``: strip, remove its exclusions, search its crawler
# patterns) on its own data. Its one Python regex of ~1,500 crawler alternatives is tried at every position
# of the header: a 500-character header took ~0.3 s of the event loop, 2,000 ~3 s, 8,000 ~16-22 s, for
# every other seller of the process too (a header new to the cache each time: no cache helps). Those are
# searched by RE2 here; the exclusions (52 patterns, ~1 ms at the most on 512 characters) stay its own
# regex, so that what is removed before the search is exactly what crawlerdetect removes.
_EXCLUSIONS = get_compiled_exclusions_regex()
_CRAWLERS, _CRAWLERS_OTHER = _linear(list(_CRAWLER_PATTERNS))


def is_crawler(ua: str) -> bool:
    """crawlerdetect's ``CrawlerDetect().is_crawler(ua)``, in time linear in ``ua``."""
    agent = _EXCLUSIONS.sub("", ua.strip())
    if not agent:
        return False
    return _CRAWLERS.search(agent) is not None or any(p.search(agent) for p in _CRAWLERS_OTHER)


def user_agent_info(ua: str) -> tuple[str, str, str, bool]:
    """(browser, os, device, is_bot) for a User-Agent header (its first ``UA_READ`` characters)."""
    return _user_agent_info(ua[:UA_READ])


@lru_cache(maxsize=8192)
def _user_agent_info(ua: str) -> tuple[str, str, str, bool]:
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
    is_bot = is_crawler(ua) or (r.device is not None and r.device.family == "Spider")
    if is_bot:
        device = "bot"
    return browser, os_, device, bool(is_bot)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: list[str]) -> str | None:
    """The socket peer, or the right-most untrusted X-Forwarded-For hop when the peer is a trusted proxy
    and that hop is an IP address (``livemetrics/forwarded.py``); a hop that is none is logged (at most
    once a minute) and the peer is the client."""
    if not peer:
        return None
    client = forwarded_client(peer, forwarded_for, trusted)
    if client.refused_hop is not None:
        _no_address(peer, client.refused_hop)
    return client.ip


_NO_ADDRESS_EVERY_S = 60.0
_no_address_said = OncePer(_NO_ADDRESS_EVERY_S, time.monotonic)


def _no_address(peer: str, hop: str) -> None:
    if not _no_address_said.due(""):  # one line a minute for every proxy and hop: the first says it
        return
    log.warning(
        "X-Forwarded-For through trusted proxy %s names a client that is no IP address (%r): the client is "
        "taken to be the proxy itself; a trusted proxy must append its peer's address (said at most once a "
        "minute)",
        peer,
        hop[:80],
    )


def ip_hash(ip: str | None, salts: DaySalts, now_ms: int) -> str:
    """A hash keyed by the UTC day's random salt (producers/gateway/ip_salts.py), so visitors cannot be
    followed across days, and a past day's hashes cannot be reversed once its salt is destroyed."""
    if not ip:
        return ""
    return hashlib.blake2b(ip.encode(), key=salts.day_key(now_ms // DAY_MS), digest_size=12).hexdigest()
