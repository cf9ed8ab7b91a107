"""Red-team round (session 9, H3): masking addresses in a page's URL costs time linear in the text.

``page_emails`` masks customer addresses in `page.path`, `page.referrer` and `page.title` while the gateway
validates an event (on its event loop). Its Python regex starts its local part at every position of a run
of local-part characters and scans to the end of the run for an `@`: a 2,048-character path of letters with
one `@` at its end took 43 ms of CPU, so one 1 MiB request of 240 such page views (path and referrer;
anyone with the public key) held the gateway's loop ~21 s (24 of them: 2.06 s), every seller's requests
with it (the validation charge counts digit groups, there are none). Now the same pattern runs in RE2
(linear), masking the same spans: those 240 events take 11 ms.
"""

from __future__ import annotations

import json
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.page_emails import MASK, mask_emails
from producers.gateway.ingest import parse_body
from tests.support import factories as f

# The pattern as it was (Python's re): what the masking must keep doing, span for span.
REFERENCE = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", re.I)
ALPHABET = "aZ09._%+-@40/?=&# "


def reference(text: str) -> str:
    return REFERENCE.sub(MASK, text) if "@" in text or "%40" in text else text


@settings(max_examples=500, deadline=None)
@given(
    st.text(ALPHABET, max_size=60)
    | st.lists(st.sampled_from(["ada", "@", "%40", "example", ".com", ".", "x"])).map("".join)
)
def test_the_same_spans_are_masked_as_before(text):
    assert mask_emails(text) == reference(text)


def test_known_addresses_are_masked():
    assert mask_emails("/orders?email=ada%40example.com&x=1") == f"/orders?email={MASK}&x=1"
    assert mask_emails("Hi ada.lovelace+shop@mail.example.co.uk!") == f"Hi {MASK}!"


def test_a_page_of_hostile_urls_costs_milliseconds_not_seconds():
    hostile = ["/" + "a" * 2046 + "@", ("a.%40" * 500)[:2048], ("%40a" * 700)[:2048], "a" * 1000 + "@" + "b" * 1047]
    evs = [f.page_view(page={"type": "home", "path": h, "referrer": h}) for h in hostile * 5]
    body = json.dumps({"events": evs}).encode()
    started = time.process_time()
    parsed = parse_body(body)
    spent = time.process_time() - started
    assert len(parsed) == 20
    # 20 events took ~2-3 s of CPU before (43 ms per 2,048-character field).
    assert spent < 1.0, f"{spent:.2f} s"
