"""Alert emails (pure): one alert, or a digest of several, as plain text plus HTML, every value escaped.
Each names the alert and links to the dashboard's payment-error table where the row is."""

from __future__ import annotations

import html
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

KIND_TITLE = {
    "payment_failed": "Payment failed",
    "error_spike": "Payment error spike",
    "traffic_dropped": "Traffic dropped",
}


def _title(a: dict[str, Any]) -> str:
    return KIND_TITLE.get(str(a.get("kind")), str(a.get("kind") or "Alert"))


def _facts(a: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) lines of an alert, the ones a seller needs to follow the customer up."""
    order, pay, cust = a.get("order") or {}, a.get("payment") or {}, a.get("customer") or {}
    facts = [
        ("Alert", str(a.get("alert_id") or "")),
        ("Order", str(order.get("order_id") or "")),
        ("Amount", f"{order.get('amount') or ''} {order.get('currency') or ''}".strip()),
        ("Method", str(pay.get("method") or "")),
        ("Error", " ".join(str(x) for x in (pay.get("error_code"), pay.get("error_message")) if x)),
        ("Customer", ", ".join(str(cust[k]) for k in ("name", "email", "phone") if cust.get(k))),
    ]
    for key in ("failures", "rate", "baseline_rate"):  # error spikes
        if key in a:
            facts.append((key.replace("_", " ").capitalize(), str(a[key])))
    # Each value on its own line: they come from senders (a browser key's events), and line breaks in an
    # error message or a customer's name wrote lines of their own into the plain-text part, such as a second
    # "Follow up in the dashboard: <their link>" line under the seller's own alert.
    return [(k, _one_line(v)) for k, v in facts if v]


def _one_line(text: str) -> str:
    """A header value from alert text: every line break and run of whitespace one space, other control
    characters dropped. Values come from senders (a browser key's event): a line break in a Subject would
    make EmailMessage refuse the header, so the email could never be sent (no header gets in: it raises)."""
    return " ".join("".join(c for c in word if c.isprintable()) for word in text.split())


def build(alerts: list[dict[str, Any]], seller_id: str, to: str, sender: str, dashboard_url: str) -> EmailMessage:
    """The email for ``alerts`` (a digest when there are several)."""
    link = f"{dashboard_url.rstrip('/')}/dashboard/#errors"
    if len(alerts) == 1:
        a = alerts[0]
        order = a.get("order") or {}
        amount = f" {order.get('amount')} {order.get('currency') or ''}".rstrip() if order.get("amount") else ""
        subject = f"{_title(a)}{amount} ({seller_id})"
        intro = f"{_title(a)} for {seller_id}."
    else:
        subject = f"{len(alerts)} alerts for {seller_id}"
        intro = (
            f"{len(alerts)} alerts for {seller_id} arrived together (more than the emails allowed per "
            "period): here they are in one message."
        )
    text = [intro, ""]
    parts = [f"<p>{html.escape(intro)}</p>"]
    for a in alerts:
        facts = _facts(a)
        text += [f"{_title(a)}:"] + [f"  {k}: {v}" for k, v in facts] + [""]
        rows = "".join(f'<tr><th scope="row">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>' for k, v in facts)
        parts.append(f"<h2>{html.escape(_title(a))}</h2><table>{rows}</table>")
    text += [f"Follow up in the dashboard (Payment errors, find the alert id): {link}"]
    parts.append(f'<p><a href="{html.escape(link, quote=True)}">Open the payment errors</a> and find the alert id.</p>')
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = _one_line(subject), sender, to
    msg["Message-ID"] = make_msgid(domain="livemetrics")
    msg.set_content("\n".join(text))
    msg.add_alternative(f"<!doctype html><html><body>{''.join(parts)}</body></html>", subtype="html")
    return msg
