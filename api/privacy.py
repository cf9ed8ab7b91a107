"""Personal data is shown only to tokens allowed to read it; everyone else gets a masked copy that still
lets a seller recognise the case (first letter, domain, last digits) and diagnose the failure.

Masked for such tokens: the customer's email, phone and name; the client IP (removed) and user agent
(removed: with the IP it fingerprints a person; browser, OS and device stay); and every free text a
sender or a seller's staff writes, where contact data hides: ``payment.error_message``, the strings of
``payment.details`` and the status ``note``. In free text, emails and digit runs that could be a phone
number are masked; a value under a ``details`` key that names personal data (name, email, phone,
address, ip) is withheld whole. Limit: a bare name in free text is not recognisable and stays.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import re2

from livemetrics.keys import Principal

_EMAIL_PATTERN = r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+"
# The same pattern in RE2 (linear): in Python's re, a message of 2,047 letters and an `@` at its end cost
# ~16 ms (the local part tried from every position to the `@`), a hostile alert's message and details
# ~47 ms, on the API's event loop for each alert masked (tests/unit/api/test_privacy_cost.py). RE2's `\s`
# is ASCII only: Python's (str.isspace) is spelt out.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_EMAIL = re2.compile(f"[^{_SPACE}@<>()\\[\\],;:\"']+@[^{_SPACE}@<>()\\[\\],;:\"']+")
_EMAIL_RE = re.compile(_EMAIL_PATTERN)  # for text RE2 cannot take (a lone surrogate: never from the gateway)
# Phone-like: at least 6 digits, optionally grouped by spaces, dots, dashes, slashes or brackets.
_DIGIT_RUN = re.compile(r"\+?\d(?:[\s.\-/()]*\d){5,}")
_PERSONAL_KEY = re.compile(r"name|mail|phone|tel|mobile|address|street|zip|postcode|ip", re.IGNORECASE)
WITHHELD = "***"


def mask_email(email: str) -> str:
    local, _, domain = (email or "").partition("@")
    if not local:
        return ""
    return f"{local[0]}***@{domain}" if domain else f"{local[0]}***"


def mask_phone(phone: str) -> str:
    digits = [c for c in phone or "" if c.isdigit()]
    return f"*** {''.join(digits[-2:])}" if digits else ""


def mask_name(name: str) -> str:
    return " ".join(f"{w[0]}." for w in (name or "").split() if w)


def mask_text(text: str) -> str:
    """Free text with every email and phone-like digit run masked (the rest is kept for diagnosis)."""
    if not isinstance(text, str) or not text:
        return text
    try:
        text = _EMAIL.sub(lambda m: mask_email(m.group()), text)
    except UnicodeEncodeError:
        text = _EMAIL_RE.sub(lambda m: mask_email(m.group()), text)
    return _DIGIT_RUN.sub(lambda m: mask_phone(m.group()), text)


def mask_details(value: Any) -> Any:
    """``payment.details`` (any JSON a sender chose): personal-looking keys withheld, strings masked."""
    if isinstance(value, dict):
        return {
            k: (WITHHELD if _PERSONAL_KEY.search(str(k)) and v not in (None, "") else mask_details(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_details(v) for v in value]
    return mask_text(value) if isinstance(value, str) else value


def mask_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """A copy of an alert without personal data (see the module's docstring for what is masked)."""
    out = copy.deepcopy(alert)
    cust = out.get("customer") or {}
    if cust:
        out["customer"] = {
            **({"email": mask_email(cust["email"])} if cust.get("email") else {}),
            **({"phone": mask_phone(cust["phone"])} if cust.get("phone") else {}),
            **({"name": mask_name(cust["name"])} if cust.get("name") else {}),
        }
    client = out.get("client")
    if isinstance(client, dict):
        if "ip" in client:
            client["ip"] = None
        if "user_agent" in client:
            client["user_agent"] = None
    pay = out.get("payment")
    if isinstance(pay, dict):
        if "error_message" in pay:
            pay["error_message"] = mask_text(pay["error_message"])
        if pay.get("details") is not None:
            pay["details"] = mask_details(pay["details"])
    if "note" in out:
        out["note"] = mask_text(out["note"])
    out["pii_masked"] = True
    return out


def alert_for(principal: Principal, alert: dict[str, Any]) -> dict[str, Any]:
    return alert if principal.can_read_pii else mask_alert(alert)
