"""Red-team round (session 9, H3): parsing a User-Agent header costs the gateway time linear in 512 characters.

Every request's User-Agent is parsed on the gateway's event loop (browser, OS, device, and crawlerdetect's
bot check), cached by header. crawlerdetect searches one Python regex of ~1,500 alternatives, tried at
every position of the header: 0.3 s for 500 characters, ~3 s for 2,000 and ~16-22 s for 8,000 on the
loaded test machine, all of it holding every other request of the process (every seller's) still. Any
client can send such a header, and a new one each time, which no cache helps with. Now the same patterns
are searched by one RE2 automaton (``enrich.is_crawler``, the same answers as crawlerdetect: compared
here) over at most the first 512 characters (``UA_READ``, as many as are stored).
"""

from __future__ import annotations

import re
import time

from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as CRAWLERS
from crawlerdetect.providers.exclusions import data as EXCLUSIONS
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.gateway.enrich import UA_READ, is_crawler, user_agent_info

REFERENCE = CrawlerDetect()
BROWSERS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (Linux; Android 10) YandexSearch/8.10 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0) Yandex/21.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31",
]
# The literal text of each pattern (its regex syntax dropped): strings that match, or nearly match, it.
FRAGMENTS = sorted({re.sub(r"\\.|[\^$()\[\]{}|?*+]", "", p)[:40] for p in (*CRAWLERS, *EXCLUSIONS)} - {""})


def test_the_same_answers_as_crawlerdetect_for_every_pattern_and_browsers():
    cases = BROWSERS + FRAGMENTS + [f"Mozilla/5.0 (compatible; {x})" for x in FRAGMENTS]
    differ = [ua for ua in cases if is_crawler(ua) != REFERENCE.is_crawler(ua)]
    assert differ == []
    assert sum(map(is_crawler, FRAGMENTS)) > len(FRAGMENTS) // 2  # the corpus does exercise the patterns


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS + BROWSERS + [" ", "/", ";", "(", ")", "Search"]), max_size=6))
def test_the_same_answers_as_crawlerdetect_on_mixed_fragments(parts):
    ua = " ".join(parts)
    assert is_crawler(ua) == REFERENCE.is_crawler(ua), ua


def test_a_long_header_costs_about_what_512_characters_cost():
    user_agent_info("Mozilla/5.0 warm-up")
    hostile = [f"Mozilla/5.0 {i} " + "a" * 8_000 for i in range(10)] + [f"{i}" + "1" * 8_000 for i in range(10)]
    started = time.process_time()
    for ua in hostile:  # each new to the cache
        user_agent_info(ua)
    spent = time.process_time() - started
    # 20 headers of 8,000 characters took 16-22 s each before (crawlerdetect alone), ~0.3 s each at 512.
    assert spent < 2.0, f"{spent:.2f} s for 20 headers"
    assert user_agent_info("x" * 600 + " Googlebot") == user_agent_info("x" * UA_READ)  # only 512 read
