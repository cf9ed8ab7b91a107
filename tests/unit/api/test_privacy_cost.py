"""Red-team round (session 9, H3): masking an alert for a token without the PII right costs linear time.

``api/privacy.py`` masks emails in an alert's free text (``payment.error_message``, the strings of
``payment.details``, the note) for tokens without the personal-data right, on the API's event loop, for
every alert sent to such a dashboard (and each alert replayed on connect). Its Python regex tried an
address's local part from every position of a run without `@`, to the `@`: a 2,047-letter message ending
in `@` cost ~16 ms, a hostile alert (that message and 7 details strings of 1,000 letters and an `@`) ~47 ms,
anyone with the seller's public key can send such failures, and every seller's sockets on that API process
wait. Now the same pattern runs in RE2 (Python's `\\s` spelt out), masking the same spans.
"""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from api import privacy
from api.privacy import mask_alert, mask_email, mask_text

OLD = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+")  # the pattern as it was (Python's re)
SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
ALPHABET = "aZ09.@<>()[],;:\"'-_+%é" + SPACES + "\u200b\u00ad"


@settings(max_examples=500, deadline=None)
@given(st.text(ALPHABET, max_size=40))
def test_the_same_emails_are_masked_as_before(text):
    old = OLD.sub(lambda m: mask_email(m.group()), text)
    assert privacy._EMAIL.sub(lambda m: mask_email(m.group()), text) == old
    assert mask_text(text) == privacy._DIGIT_RUN.sub(lambda m: privacy.mask_phone(m.group()), old)


def test_a_hostile_alert_is_masked_in_milliseconds():
    details = {f"k{i}": "a" * 1000 + "@" for i in range(7)}  # within the details limits (8 KiB)
    alerts = [
        {"payment": {"error_message": "a" * 2047 + "@", "details": details}, "customer": {}, "client": {}}
        for _ in range(20)
    ]
    started = time.process_time()
    for alert in alerts:
        mask_alert(alert)
    spent = time.process_time() - started
    assert spent < 0.3, f"{spent:.2f} s for 20 alerts"  # ~47 ms each before: ~0.9 s
