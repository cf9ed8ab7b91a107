"""An alert's values reach an email's Subject: a sender-chosen value with a line break (the contract's
`^[A-Z]{3}$` lets "EUR\\n" through: `$` matches before a final newline) must neither add a header nor
make the email impossible to build (which failed the delivery on every retry)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from api.notify.email_message import build

EVIL = ["EUR\n", "EUR\r\nBcc: thief@evil.example", "EUR\rX-Evil: 1", "EUR\x0bBcc: x@y", "EUR\u2028Bcc: x@y"]


@pytest.mark.parametrize("currency", EVIL)
def test_a_line_break_in_an_alert_value_adds_no_header_and_the_email_is_built(currency):
    alert = {
        "kind": "payment_failed\nBcc: k@evil.example",
        "alert_id": "ev-1",
        "order": {"order_id": "o-1", "amount": "12.50\r\nCc: a@evil.example", "currency": currency},
    }
    msg = build([alert], "shop-a", "ops@shop.example", "alerts@lm.example", "https://lm.example/")
    back = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert back["Bcc"] is None and back["Cc"] is None and back["X-Evil"] is None
    assert back["To"] == "ops@shop.example"
    subject = back["Subject"]
    assert "\n" not in subject and "\r" not in subject and subject.endswith("(shop-a)"), subject
    assert "12.50" in subject
