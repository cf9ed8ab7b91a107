"""A customer's email has one spelling once stored (H1 red team): a storefront may send "josé" with a
combining accent (Unicode NFD, as some keyboards and macOS forms give it), and `livemetrics erase --email
josé@example.com`, typed the usual (NFC) way, compares code points. The gateway stores every email in NFC,
so the erase finds the customer whichever way the storefront spelt the address; and it lower-cases the
stored address as it does the one asked for, accented capitals too (ClickHouse's `lower` is ASCII only:
`ÉLODIE@EXAMPLE.COM` was never found by `élodie@example.com`) (docs/security.md, Personal data)."""

from __future__ import annotations

import time
import unicodedata

import msgspec
import pytest

from clickhouse.client import get_client
from clickhouse.erase import erase
from clickhouse.migrate import migrate
from livemetrics.contract import COLUMN_NAMES, decode, to_row
from producers.gateway.ingest import ClientInfo, ingest
from tests.support import factories as f

pytestmark = pytest.mark.integration
NFC = "josé.müller@example.com"
NFD = unicodedata.normalize("NFD", NFC)


def test_an_email_sent_decomposed_is_stored_composed_and_erased_by_its_usual_spelling(settings):
    assert NFD != NFC
    migrate(settings)
    client = ClientInfo(seller_id="shop-e", ip="203.0.113.9", user_agent=f.CHROME)
    events = [f.payment_failed(customer=f.customer(email=email, phone="+44 20 7946 0000")) for email in (NFD, NFC)]
    # one body the clean path decodes at once, one event by event: both store the composed form
    for body in ({"events": events}, {"events": [events[0], {"bad": 1}]}):
        out = ingest(msgspec.json.encode(body), client, settings, received_at=int(time.time() * 1000))
        for _, _, value in out.records:
            assert decode(value).customer.email == NFC
    stored = [decode(v) for _, _, v in ingest(msgspec.json.encode({"events": events}), client, settings).records]
    get_client(settings).insert(
        f"{settings.clickhouse_database}.events", [to_row(e) for e in stored], column_names=list(COLUMN_NAMES)
    )

    assert erase(settings, email=NFC)["events"] == 2
    rows = get_client(settings).query(f"SELECT customer_email FROM {settings.clickhouse_database}.events").result_rows
    assert rows == [("",), ("",)]


def test_an_email_stored_in_capitals_is_erased_by_its_lower_case_spelling(settings):
    migrate(settings)
    client = ClientInfo(seller_id="shop-e", ip="203.0.113.9", user_agent=f.CHROME)
    body = {"events": [f.payment_failed(customer=f.customer(email="ÉLODIE.ÅSTRÖM@EXAMPLE.COM"))]}
    stored = [decode(v) for _, _, v in ingest(msgspec.json.encode(body), client, settings).records]
    get_client(settings).insert(
        f"{settings.clickhouse_database}.events", [to_row(e) for e in stored], column_names=list(COLUMN_NAMES)
    )
    assert erase(settings, email="élodie.åström@example.com")["events"] == 1
    rows = get_client(settings).query(f"SELECT customer_email FROM {settings.clickhouse_database}.events").result_rows
    assert rows == [("",)]


def test_an_operator_typing_the_address_decomposed_finds_every_spelling_stored(settings):
    """The erase request itself is composed too: an operator's keyboard may type "josé" decomposed, and
    rows stored before the gateway composed addresses may be decomposed; the note naming the address in
    capitals goes as well (``positionCaseInsensitive`` was ASCII only)."""
    migrate(settings)
    db, c = settings.clickhouse_database, get_client(settings)
    client = ClientInfo(seller_id="shop-e", ip="203.0.113.9", user_agent=f.CHROME)
    body = {"events": [f.payment_failed(customer=f.customer(email=NFC)) for _ in range(2)]}
    stored = [decode(v) for _, _, v in ingest(msgspec.json.encode(body), client, settings).records]
    stored[1].customer.email = NFD  # as stored before the gateway composed addresses
    other = [
        decode(v) for _, _, v in ingest(msgspec.json.encode({"events": [f.payment_failed()]}), client, settings).records
    ]
    c.insert(f"{db}.events", [to_row(e) for e in stored + other], column_names=list(COLUMN_NAMES))
    c.insert(
        f"{db}.payment_error_status",
        [
            ["shop-e", "a1", "contacted", f"wrote to {NFC.upper()} twice", 0, "test"],
            ["shop-e", "a2", "contacted", "wrote to someone else", 0, "test"],
        ],
        column_names=["seller_id", "alert_id", "status", "note", "updated_at", "updated_by"],
    )
    removed = erase(settings, email=f" {NFD.upper()} ")
    assert removed == {"events": 2, "payment_errors": 0, "payment_error_status": 1}
    left = c.query(f"SELECT customer_email FROM {db}.events ORDER BY customer_email").result_rows
    assert left == sorted([("",), ("",), (other[0].customer.email,)])
    assert c.query(f"SELECT note FROM {db}.payment_error_status").result_rows == [("wrote to someone else",)]
