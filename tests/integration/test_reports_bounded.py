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

from clickhouse import query
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from livemetrics.contract import COLUMN_NAMES, decode, to_row
from tests.support import factories as f

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
