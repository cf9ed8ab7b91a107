"""`livemetrics erase` (POST /v1/admin/erase) must not itself keep the customer's email or phone: a
mutation's text stays in ClickHouse (system.mutations, and a mutation_N.txt file beside the table's
parts) long after it ran, readable by whoever may read system tables. The mutations match the customer
by a keyed hash with a key of that erase alone, and the notes by the keys of the rows found."""

from __future__ import annotations

import httpx
import pytest

from clickhouse.client import get_client
from tests.integration.test_clickhouse_payment_errors import get, stack  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_the_mutations_of_an_erase_hold_no_email_or_phone(stack):  # noqa: F811 - the fixture
    s = stack["settings"]
    api = stack["api"].url
    alert_id = get(stack, stack["pii"]).json()["items"][1]["alert_id"]
    r = httpx.post(
        f"{api}/v1/sellers/shop-1/payment-errors/{alert_id}/status",
        json={"status": "contacted", "note": "wrote to C1@example.com, called +44 20 7946 0958"},
        headers={"Authorization": f"Bearer {stack['pii']}"},
        timeout=15,
    )
    assert r.status_code == 200, r.text
    admin = {"Authorization": f"Bearer {s.admin_token.get_secret_value()}"}
    r = httpx.post(f"{api}/v1/admin/erase", json={"email": "C1@example.com"}, headers=admin, timeout=60)
    assert r.json()["removed"] == {"events": 1, "payment_errors": 1, "payment_error_status": 1}, r.text
    r = httpx.post(f"{api}/v1/admin/erase", json={"phone": "+44 20 7946 0958"}, headers=admin, timeout=60)
    assert r.json()["removed"]["events"] == 5 and r.json()["removed"]["payment_errors"] == 5, r.text
    db, c = s.clickhouse_database, get_client(s)
    commands = [
        row[0]
        for row in c.query(
            "SELECT command FROM system.mutations WHERE database = {db:String}", parameters={"db": db}
        ).result_rows
    ]
    assert len(commands) >= 4, commands  # events and payment_errors twice, the note once
    for command in commands:
        assert "c1@example.com" not in command.lower(), command
        # the phone in any spelling (as typed, digits only, with or without +44): its last eight digits, joined
        # or as typed; not its 4-digit groups, which a mutation's random 64-bit key can hold by chance
        assert "79460958" not in command and "7946 0958" not in command, command
    # And the erase did erase (the same checks as test_clickhouse_payment_errors).
    for table in ("events", "payment_errors"):
        n = c.query(f"SELECT count() FROM {db}.{table} WHERE customer_email = 'c1@example.com'").result_rows[0][0]
        assert n == 0, table
    assert c.query(f"SELECT count() FROM {db}.events WHERE customer_phone != ''").result_rows[0][0] == 0
    assert c.query(f"SELECT count() FROM {db}.payment_error_status WHERE note ILIKE '%c1@%'").result_rows[0][0] == 0
