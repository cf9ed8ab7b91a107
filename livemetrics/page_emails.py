"""Email addresses in a page's URL and title, masked as the gateway accepts an event (docs/security.md,
Personal data).

Shops put a customer's address in URLs (a password reset, an order-status or newsletter link:
`/orders?email=ada%40example.com`), and the tracker sends the page's path with its query string, and its
referrer and title. Personal data is accepted only as `customer` on checkout and payment events, where
erasure, the PII TTL and the no-PII views find it; an address in `page.path` was stored in ClickHouse for
the events' whole lifetime, shown to analysts and left alone by `livemetrics erase`. Each address there
becomes ``MASK``; the rest of the page is kept, so the page view still counts.
"""

from __future__ import annotations

from typing import Any

import re2  # google-re2: linear in the text

MASK = "[email]"
# local@domain.tld, the @ raw or URL-escaped (%40); ASCII, as URLs carry addresses. RE2, not Python's re:
# there the local part was tried from every position of a run of local-part characters, each scanning to
# the run's end for an `@`; a 2,048-character path of letters and one `@` took ~0.15-1 s on the gateway's
# event loop (tests/unit/test_page_emails_cost.py, which also checks that the same spans are masked).
_OPTIONS = re2.Options()
_OPTIONS.case_sensitive = False
_EMAIL = re2.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", _OPTIONS)


def mask_emails(text: str) -> str:
    """``text`` with every email address replaced by ``MASK`` (``text`` itself when it has none)."""
    if "@" not in text and "%40" not in text:
        return text
    return _EMAIL.sub(MASK, text)


def mask_page(page: Any) -> None:
    """Mask the addresses in a page's path, referrer and title, in place (a contract ``Page`` or its
    clean-path twin). ``check_rules`` calls it only for a page with an `@` or `%40` in one of them."""
    for name in ("path", "referrer", "title"):
        value = getattr(page, name)
        if value is not None:
            masked = mask_emails(value)
            if masked != value:
                setattr(page, name, masked)
