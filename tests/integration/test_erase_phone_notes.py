"""An erase by phone deletes the status notes that mention the number, however spelt, of any seller, and
no other note: one whose digits merely contain the number's (a longer number, digits of several words)
stays. Comparing the note's digits alone deleted those too (clickhouse/erase.py, ``phone_in_text``)."""

from __future__ import annotations

import httpx
import pytest

from clickhouse.client import get_client
from tests.integration.test_clickhouse_payment_errors import stack  # noqa: F401 - the fixture
from tests.unit.clickhouse.test_erase_phone_notes import ABOUT_HIM, DIGITS, NOT_ABOUT_HIM

pytestmark = pytest.mark.integration


def test_an_erase_by_phone_deletes_the_notes_naming_the_number_and_no_other(stack):  # noqa: F811 - the fixture
    s = stack["settings"]
    db, c = s.clickhouse_database, get_client(s)
    notes = [
        (seller, f"n{i}-{seller}", note)
        for i, note in enumerate(ABOUT_HIM + NOT_ABOUT_HIM)
        for seller in ("shop-1", "shop-2")
    ]
    c.insert(
        f"{db}.payment_error_status",
        [[seller, alert_id, "contacted", note, 0, "test"] for seller, alert_id, note in notes],
        column_names=["seller_id", "alert_id", "status", "note", "updated_at", "updated_by"],
    )
    admin = {"Authorization": f"Bearer {s.admin_token.get_secret_value()}"}
    r = httpx.post(f"{stack['api'].url}/v1/admin/erase", json={"phone": "+" + DIGITS}, headers=admin, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["removed"]["payment_error_status"] == 2 * len(ABOUT_HIM), r.text
    left = {
        row[0] for row in c.query(f"SELECT note FROM {db}.payment_error_status WHERE alert_id LIKE 'n%'").result_rows
    }
    assert left == set(NOT_ABOUT_HIM)
