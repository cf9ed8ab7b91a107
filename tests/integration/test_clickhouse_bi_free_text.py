"""The BI views show sender-written free text (`error_message`) the way the API shows it to a token
without the personal-data right (api/privacy.py mask_text): emails and phone-like digit runs masked. A
browser key's sender chooses that text, and it names customers ("declined for ada@example.com"); BI
logins get no personal data (docs/bi.md), so the views mask it in ClickHouse, and the analyst role reads
it only through bi_events. Real chdb; the masks must agree with Python's on every sample."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from api.privacy import mask_text
from clickhouse.bi.access import app_access
from clickhouse.client import get_client
from clickhouse.migrate import migrate

pytestmark = pytest.mark.integration

FIXED = [
    "declined for ada@example.com, call +44 20 7946 0958",
    "Do not honor",
    "card 12345 expired",  # five digits: not a phone
    "ref 123456",
    "a@b",
    "mail: x.y+tag@shop.example.co.uk; tel (030) 123-45/67",
    "",
    "ümlaut josé@exämple.de 0049 30 1234567",
    "two: a@x.example b@y.example and 1 2 3 4 5 6",
]


def samples(n: int) -> list[str]:
    rng = random.Random(7)
    pieces = [
        "ada@example.com",
        "+44 20 7946 0958",
        "12345",
        "123456",
        "(030) 12 34 56",
        "declined",
        " ",
        ", ",
        "x@y",
        "é",
        "1.2.3.4.5.6",
        "a-b",
        "@",
        "9",
        "0049/30/1234567",
        "'q'",
        "tel:",
    ]
    return [("".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))) for _ in range(n)]


def test_bi_views_mask_emails_and_phone_numbers_in_free_text_as_the_api_does(settings):
    migrate(settings)
    db, c = settings.clickhouse_database, get_client(settings)
    texts = FIXED + samples(300)
    now = datetime.now(UTC)
    c.insert(
        f"{db}.events",
        [[uuid.uuid4(), "payment_failed", "shop-a", f"s{i}", now, now, t] for i, t in enumerate(texts)],
        column_names=["event_id", "type", "seller_id", "session_id", "ts", "received_at", "error_message"],
    )
    c.insert(
        f"{db}.payment_errors",
        [[f"a{i}", "shop-a", now, t] for i, t in enumerate(texts)],
        column_names=["alert_id", "seller_id", "at", "error_message"],
    )
    by_session = dict(c.query(f"SELECT session_id, error_message FROM {db}.bi_events").result_rows)
    by_alert = dict(c.query(f"SELECT alert_id, error_message FROM {db}.bi_payment_errors").result_rows)
    assert len(by_session) == len(by_alert) == len(texts)
    for i, t in enumerate(texts):
        assert by_session[f"s{i}"] == mask_text(t), (t, by_session[f"s{i}"])
        assert by_alert[f"a{i}"] == mask_text(t), (t, by_alert[f"a{i}"])
    fixed = [by_session[f"s{i}"] for i in range(len(FIXED))] + [by_alert[f"a{i}"] for i in range(len(FIXED))]
    assert not any("ada@example.com" in t or "7946" in t for t in fixed), fixed


def test_the_analyst_role_reads_free_text_only_through_the_masked_view(settings):
    grants = [s for s in app_access(settings) if "livemetrics_analyst" in s and s.startswith("GRANT")]
    on_events = [s for s in grants if f"{settings.clickhouse_database}.events " in s]
    assert on_events and all("error_message" not in s for s in on_events), on_events
    assert any(f"ON {settings.clickhouse_database}.bi_events TO livemetrics_analyst" in s for s in grants), grants
