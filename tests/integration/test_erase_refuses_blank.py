"""An erase must name a customer: an email that is blank once trimmed would match every row without an
email (`lower(customer_email) = ''`), wiping the phone, name and IP of every other customer and deleting
every seller's payment errors that carry no email. POST /v1/admin/erase answers 422 and erases nothing."""

from __future__ import annotations

import httpx
import pytest

from clickhouse.client import get_client
from tests.integration.test_clickhouse_payment_errors import stack  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_a_blank_email_is_refused_and_erases_nothing(stack):  # noqa: F811 - the fixture
    s = stack["settings"]
    db, c = s.clickhouse_database, get_client(s)
    c.command(f"ALTER TABLE {db}.events UPDATE customer_email = '' WHERE 1 SETTINGS mutations_sync = 2")
    c.command(f"ALTER TABLE {db}.payment_errors UPDATE customer_email = '' WHERE 1 SETTINGS mutations_sync = 2")
    phones = c.query(f"SELECT count() FROM {db}.events WHERE customer_phone != ''").result_rows[0][0]
    errors = c.query(f"SELECT count() FROM {db}.payment_errors").result_rows[0][0]
    assert phones == 6 and errors == 7  # customers known by phone only, in two sellers
    admin = {"Authorization": f"Bearer {s.admin_token.get_secret_value()}"}
    for body in ({"email": " "}, {"email": "\t\n"}, {"email": " ", "phone": None}):
        r = httpx.post(f"{stack['api'].url}/v1/admin/erase", json=body, headers=admin, timeout=60)
        assert r.status_code == 422 and "blank" in r.json()["detail"], (body, r.text)
    assert c.query(f"SELECT count() FROM {db}.events WHERE customer_phone != ''").result_rows[0][0] == phones
    assert c.query(f"SELECT count() FROM {db}.payment_errors").result_rows[0][0] == errors
