"""Personal data (email, phone, name, IP) is shown only to tokens allowed to read it; everyone else gets
a masked copy that still lets a seller recognise the case (first letter, domain, last digits)."""

from __future__ import annotations

import copy
from typing import Any

from livemetrics.keys import Principal


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


def mask_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """A copy of an alert without personal data (customer contact masked, client IP removed)."""
    out = copy.deepcopy(alert)
    cust = out.get("customer") or {}
    if cust:
        out["customer"] = {
            **({"email": mask_email(cust["email"])} if cust.get("email") else {}),
            **({"phone": mask_phone(cust["phone"])} if cust.get("phone") else {}),
            **({"name": mask_name(cust["name"])} if cust.get("name") else {}),
        }
    client = out.get("client")
    if isinstance(client, dict) and "ip" in client:
        client["ip"] = None
    out["pii_masked"] = True
    return out


def alert_for(principal: Principal, alert: dict[str, Any]) -> dict[str, Any]:
    return alert if principal.can_read_pii else mask_alert(alert)
