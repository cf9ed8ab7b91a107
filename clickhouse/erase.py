"""``livemetrics erase --email ... / --phone ...``: remove one customer's personal data from every table.

Mutations that rewrite the data parts (``ALTER TABLE ... UPDATE/DELETE`` with ``mutations_sync=2``), not
lightweight deletes that only hide rows: when this returns, the values are gone from disk.
- ``events``: the personal-data columns (contract.PII_COLUMNS) are blanked on the customer's rows; the
  rest of each event (and the rollups, which never held personal data) stays for the reports.
- ``payment_errors``: the customer's alerts are deleted (they exist to contact that customer).
- ``payment_error_status``: notes that mention the email or the phone number (``phone_in_text``) are deleted.
- the alerts running API processes hold in memory: an erase record on the ``erasures`` topic makes
  each drop the customer's (livemetrics/erasure_notice.py); a dashboard already showing one keeps it
  until it reloads.

Embedded chdb allows one process per data directory: when the API owns it, the command asks the API
(admin-only ``POST /v1/admin/erase``); otherwise it opens ClickHouse itself.
"""

from __future__ import annotations

import re
import secrets
import sys
from typing import Any

from livemetrics import erasure_notice
from livemetrics.card_data import card_field_error
from livemetrics.contract import PII_COLUMNS
from livemetrics.settings import Settings

_SYNC = {"mutations_sync": 2}
# The stored address in the spelling ``erasure_notice.norm_email`` gives the one asked for: NFC (rows
# stored before the gateway composed addresses may be decomposed), then lower case, accented capitals too
# (ClickHouse's ``lower`` is ASCII only).
STORED_EMAIL = "lowerUTF8(normalizeUTF8NFC(customer_email))"


def _digits(phone: str) -> str:
    return re.sub(r"[^0-9]", "", phone)


def phone_in_text(digits: str) -> str:
    """An RE2 (and Python) pattern that finds the phone number with these digits in free text however it
    is spelt (spaces, dots, dashes, brackets between the digits, a + before them), but not inside a longer
    run of digits: a note about order 1555010012, or one whose digits merely add up to them across words,
    is no note about +1 555 0100 (comparing the note's digits alone deleted such notes of every seller).
    No backslash: it is passed as a query parameter."""
    return "(?:^|[^0-9])" + "[ ().-]*".join(digits) + "(?:[^0-9]|$)"


def check(email: str | None, phone: str | None) -> str:
    """Refuse (ValueError) an erase that names no customer or names one by a card number; the phone's digits."""
    if email is not None and not email.strip():
        # Blank once trimmed, it would match every row without an email: every other customer's data.
        raise ValueError("--email is blank: give the customer's email address")
    if not email and not phone:
        raise ValueError("give --email or --phone (or both)")
    for field, value in (("email", email), ("phone", phone)):
        # No customer is known by a card number (the gateway refuses events holding one), and the value would go
        # on into ClickHouse's queries, the erase record on Kafka and the error below, which quotes the phone
        # (docs/security.md, Card data). Here, not in the API alone: the CLI erases directly without the API.
        if value and (why := card_field_error(field, value, phone=field == "phone")):
            raise ValueError(why)
    digits = _digits(phone or "")
    if phone is not None and len(digits) < 4:
        raise ValueError(f"--phone {phone!r} has fewer than 4 digits")
    return digits


def erase(settings: Settings, email: str | None = None, phone: str | None = None) -> dict[str, int]:
    """Erase a customer's personal data; returns rows affected per table."""
    from clickhouse.client import get_client

    digits = check(email, phone)
    c, db = get_client(settings), settings.clickhouse_database
    params: dict[str, Any] = {
        "email": erasure_notice.norm_email(email),
        "digits": digits,
        "phone_re": phone_in_text(digits),
    }
    who = []
    if email:
        who.append(f"{STORED_EMAIL} = {{email:String}}")
    if phone:
        who.append("replaceRegexpAll(customer_phone, '[^0-9]', '') = {digits:String}")
    match = " OR ".join(who)
    note = " OR ".join(
        (["positionCaseInsensitiveUTF8(normalizeUTF8NFC(note), {email:String}) > 0"] if email else [])
        + (["match(note, {phone_re:String})"] if phone else [])
    )

    def count(table: str, where: str) -> int:
        return int(c.query(f"SELECT count() FROM {db}.{table} WHERE {where}", parameters=params).result_rows[0][0])

    # A mutation's text outlives it (system.mutations, mutation_N.txt beside the parts), so the mutations
    # never name the email or phone: they match a keyed hash, under a key made for this erase alone, and
    # the notes by a hash of the keys of the rows found (tests/integration/test_erase_leaves_no_trace.py).
    key = f"(toUInt64({secrets.randbits(64)}), toUInt64({secrets.randbits(64)}))"

    def keyed(value: str) -> int:
        return int(c.query(f"SELECT sipHash64Keyed({key}, {value})", parameters=params).result_rows[0][0])

    hashed = []
    if email:
        hashed.append(f"sipHash64Keyed({key}, {STORED_EMAIL}) = {keyed('{email:String}')}")
    if phone:
        hashed.append(
            f"sipHash64Keyed({key}, replaceRegexpAll(customer_phone, '[^0-9]', '')) = {keyed('{digits:String}')}"
        )
    by_hash = " OR ".join(hashed)
    row_key = f"sipHash64Keyed({key}, seller_id, alert_id, updated_at)"
    notes = [
        int(r[0])
        for r in c.query(f"SELECT {row_key} FROM {db}.payment_error_status WHERE {note}", parameters=params).result_rows
    ]
    removed = {
        "events": count("events", match),
        "payment_errors": count("payment_errors", match),
        "payment_error_status": len(notes),
    }
    blank = ", ".join(f"{col} = ''" for col in PII_COLUMNS)
    if removed["events"]:
        c.command(f"ALTER TABLE {db}.events UPDATE {blank} WHERE {by_hash}", settings=_SYNC)
    if removed["payment_errors"]:
        c.command(f"ALTER TABLE {db}.payment_errors DELETE WHERE {by_hash}", settings=_SYNC)
    if notes:
        c.command(
            f"ALTER TABLE {db}.payment_error_status DELETE WHERE {row_key} IN ({', '.join(map(str, notes))})",
            settings=_SYNC,
        )
    erasure_notice.publish(settings, email, phone)  # always: the API may hold alerts ClickHouse never stored
    return removed


def run(settings: Settings, email: str | None, phone: str | None) -> int:
    """The command: through the running API when it owns the embedded chdb directory, else directly."""
    try:
        check(email, phone)  # before the API or ClickHouse is asked anything
        if settings.clickhouse_embedded and (removed := _via_api(settings, email, phone)) is not None:
            pass
        else:
            from clickhouse.migrate import migrate

            migrate(settings)  # a fresh database has nothing to erase, but the tables must exist to say so
            removed = erase(settings, email, phone)
    except (ValueError, RuntimeError) as exc:
        print(f"livemetrics erase: {exc}", file=sys.stderr)
        return 1
    for table, n in removed.items():
        print(f"{table}: {n} row(s) {'with personal data erased' if table == 'events' else 'deleted'}")
    return 0


def _via_api(settings: Settings, email: str | None, phone: str | None) -> dict[str, int] | None:
    """None when no API answers on this machine (then this process may open the chdb directory)."""
    import httpx

    url = f"http://{settings.host}:{settings.api_port}/v1/admin/erase"
    try:
        r = httpx.post(
            url,
            json={"email": email, "phone": phone},
            timeout=300,
            headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
        )
    except httpx.TransportError:
        return None
    if r.status_code != 200:
        raise RuntimeError(f"the API owning ClickHouse refused ({r.status_code}): {r.text}")
    return r.json()["removed"]
