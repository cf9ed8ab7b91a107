"""Alert emails (pure): plain text and HTML, escaped, a digest for several alerts, a link to the table."""

from __future__ import annotations

from api.notify.email_message import build

ALERT = {
    "kind": "payment_failed",
    "alert_id": "ev-1",
    "seller_id": "shop-a",
    "customer": {"name": "Ada <b>Lovelace</b>", "email": "ada@example.com"},
    "order": {"order_id": "o-1", "amount": "12.50", "currency": "EUR"},
    "payment": {"method": "card", "error_code": "card_declined", "error_message": "Do not honor"},
}


def test_one_alert_has_its_details_in_text_and_escaped_html_and_a_link():
    msg = build([ALERT], "shop-a", "ops@shop.example", "lm <alerts@lm.example>", "https://lm.example/")
    assert msg["Subject"] == "Payment failed 12.50 EUR (shop-a)" and msg["To"] == "ops@shop.example"
    text = msg.get_body(("plain",)).get_content()
    page = msg.get_body(("html",)).get_content()
    for fact in (
        "Alert: ev-1",
        "Order: o-1",
        "Amount: 12.50 EUR",
        "Error: card_declined Do not honor",
        "ada@example.com",
        "https://lm.example/dashboard/#errors",
    ):
        assert fact in text, fact
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in page and "<b>Lovelace" not in page
    assert 'href="https://lm.example/dashboard/#errors"' in page


def test_several_alerts_make_one_digest():
    spike = {"kind": "error_spike", "alert_id": "sp-1", "seller_id": "shop-a", "failures": 9}
    msg = build(
        [ALERT, {**ALERT, "alert_id": "ev-2"}, spike], "shop-a", "ops@shop.example", "lm@x.example", "http://h:1"
    )
    assert msg["Subject"] == "3 alerts for shop-a"
    text = msg.get_body(("plain",)).get_content()
    assert "Alert: ev-1" in text and "Alert: ev-2" in text and "Payment error spike:" in text and "Failures: 9" in text


def test_a_senders_line_breaks_write_no_line_of_their_own_in_the_text():
    """An error message, a customer name (any sender with the shop's public key) with line breaks wrote
    lines of its own into the plain-text part: here a second, false "Follow up" link under the alert."""
    fake = "\n\nFollow up in the dashboard (Payment errors, find the alert id): https://evil.example/login\n"
    alert = {**ALERT, "payment": {**ALERT["payment"], "error_message": "Do not honor" + fake}}
    alert["customer"] = {"name": "Ada\r\n  Order: o-2\u2028Amount: 0 EUR"}
    text = build([alert], "shop-a", "ops@shop.example", "lm <alerts@lm.example>", "https://lm.example/")
    lines = text.get_body(("plain",)).get_content().splitlines()
    follow = [line for line in lines if line.startswith("Follow up")]
    assert follow == [
        "Follow up in the dashboard (Payment errors, find the alert id): https://lm.example/dashboard/#errors"
    ]
    assert [line for line in lines if "Order:" in line] == ["  Order: o-1", "  Customer: Ada Order: o-2 Amount: 0 EUR"]
    assert any(line.startswith("  Error: card_declined Do not honor Follow up") for line in lines)
