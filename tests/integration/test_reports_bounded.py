"""A report's size does not grow with what a sender invents (H1 red team): anyone with a shop's public
browser key can send payment failures with a new error code, or a new payment method, on every event.
The error-trends report keeps each day's most frequent codes and one `~other` row for the rest of the
day's failures, the payment-methods report the most used methods and one `~other` row; the totals are
unchanged (docs/clickhouse.md, Reports)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import msgspec
import pytest

from clickhouse import query, session_reports
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from livemetrics.contract import COLUMN_NAMES, decode, to_row
from tests.support import factories as f
from tests.support import oracle

pytestmark = pytest.mark.integration
SELLER = "flooded"


def _event(d: dict, at: int):
    return decode(msgspec.json.encode({**d, "seller_id": SELLER, "received_at": at, "ts": at}))


def _failure(code: str, method: str, at: int):
    over = {"error_code": code, "method": method}
    return _event(f.payment_failed(payment_overrides=over), at)


def test_invented_error_codes_and_methods_do_not_grow_the_reports(settings):
    migrate(settings)
    at = int(time.time() * 1000) // 1000 * 1000  # every event at one instant: one day, one hour
    real = [_failure("card_declined", "card", at) for _ in range(30)]
    real += [_failure("insufficient_funds", "paypal", at) for _ in range(20)]
    real += [_event(f.payment_succeeded(payment_overrides={"method": "card", "amount": "10"}), at) for _ in range(5)]
    flood = [_failure(f"invented_{i:04d}", f"m{i:04d}", at) for i in range(500)]
    get_client(settings).insert(
        f"{settings.clickhouse_database}.events", [to_row(e) for e in real + flood], column_names=list(COLUMN_NAMES)
    )
    frm = datetime.fromtimestamp(at / 1000 - 3600, UTC).replace(tzinfo=None)
    to = datetime.fromtimestamp(at / 1000 + 3600, UTC).replace(tzinfo=None)
    kept = query.REPORT_MAX_VALUES

    trends = query.report(settings, "error-trends", SELLER, frm, to)["rows"]
    assert len(trends) == kept + 1
    codes = {r["error_code"]: r["failures"] for r in trends}
    assert codes["card_declined"] == 30 and codes["insufficient_funds"] == 20
    assert codes["~other"] == 500 - (kept - 2)  # the day's failures past the kept codes, none lost
    assert sum(codes.values()) == 550

    methods = query.report(settings, "payment-methods", SELLER, frm, to)["rows"]
    assert len(methods) == kept + 1
    named = {r["method"]: r for r in methods}
    assert (named["card"]["failed"], named["card"]["succeeded"]) == (30, 5)
    assert named["card"]["revenue"] == {"EUR": "50.00"}
    assert named["paypal"]["failed"] == 20
    assert named["~other"]["failed"] == 500 - (kept - 2) and named["~other"]["revenue"] == {}
    assert sum(r["failed"] for r in methods) == 550
    assert abs(sum(r["share"] for r in methods) - 1) < 0.001


def test_the_offers_report_is_cut_in_clickhouse(settings, monkeypatch):
    # a seller with more viewed offers than the report shows: ClickHouse returns only the report's rows
    # (a million distinct offer ids sent every one to Python, seconds of the API's CPU), the same ones
    migrate(settings)
    at = int(time.time() * 1000) // 1000 * 1000
    n = session_reports.POPULAR_ROWS + 50
    events = [_event({**f.page_view("offer", offer_id=f"o-{i:03d}"), "session_id": f"s{i}"}, at) for i in range(n)]
    events += [_event({**f.page_view("offer", offer_id=f"o-{i:03d}"), "session_id": "fan"}, at) for i in range(90, 140)]
    get_client(settings).insert(
        f"{settings.clickhouse_database}.events", [to_row(e) for e in events], column_names=list(COLUMN_NAMES)
    )
    returned = []
    run = query.run

    def counting(*args, **kw):
        rows = run(*args, **kw)
        returned.append((args[1], len(rows)))
        return rows

    monkeypatch.setattr(query, "run", counting)
    start = datetime.fromtimestamp(at / 1000 - 3600, UTC)
    end = datetime.fromtimestamp(at / 1000 + 3600, UTC)
    got = query.report(settings, "offers", SELLER, start.replace(tzinfo=None), end.replace(tzinfo=None))["rows"]
    assert got == oracle.reports(events, SELLER, start, end, "UTC")["offers"]["rows"][: session_reports.POPULAR_ROWS]
    assert [o["offer_id"] for o in got[:50]] == [f"o-{i:03d}" for i in range(90, 140)]  # viewed twice
    assert ("popular", session_reports.POPULAR_ROWS) in returned and max(
        k for _, k in returned
    ) <= session_reports.POPULAR_ROWS
