"""The key formats and the request signature, apart from the Kafka-backed registry (keys.py): what a
storefront's server or an SDK needs to present and sign, with nothing but the standard library.

- ``lm_pk_<id>_<secret>``: browser key, public, write-only;
- ``lm_sk_<id>_<secret>``: server key, secret, signs requests (``sign``);
- ``lm_st_<id>_<secret>``: seller token, reads one seller's data on the API.
The secret is base64url and may itself hold ``_``: split with ``split_key``, never on the last ``_``.
"""

from __future__ import annotations

import hashlib
import hmac

# "provider": a payment provider's webhook endpoint (livemetrics/provider_keys.py); never presented as a key
KINDS = {"pk": "browser", "sk": "server", "st": "token", "pv": "provider"}


def format_key(kind_code: str, key_id: str, secret: str) -> str:
    """The key as presented: ``lm_<kind>_<id>_<secret>``."""
    return f"lm_{kind_code}_{key_id}_{secret}"


def sign(secret: str, timestamp: int | str, body: bytes, backfill: bool = False) -> str:
    """The value of ``X-Livemetrics-Signature``: HMAC-SHA256 over ``"<timestamp>.<backfill>." + body``,
    ``<backfill>`` 1 when the request sends ``X-Livemetrics-Backfill``, else 0 (v2: the header is covered,
    so no one relaying a signed request can turn live events into backfill or back)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{int(backfill)}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v2={mac}"


def split_key(presented: str) -> tuple[str, str, str] | None:
    """``(kind_code, key_id, secret)`` of a presented key, or None when it is not one of ours."""
    parts = presented.split("_", 3)
    if len(parts) != 4 or parts[0] != "lm" or parts[1] not in KINDS:
        return None
    return parts[1], parts[2], parts[3]
