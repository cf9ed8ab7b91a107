"""Keys and the server-key signature (docs/ingest.md, Keys), written out here so that the SDK needs no
part of the monorepo. A test of the monorepo checks it against the gateway's own ``livemetrics.keys.sign``."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import NamedTuple


class Key(NamedTuple):
    kind: str  # "pk": a browser key (public); "sk": a server key (secret, never sent)
    key_id: str
    secret: str
    presented: str


def parse_key(presented: str) -> Key:
    """``lm_pk_<id>_<secret>`` or ``lm_sk_<id>_<secret>``; a ValueError naming what is wrong otherwise."""
    parts = presented.split("_", 3) if isinstance(presented, str) else []
    if len(parts) != 4 or parts[0] != "lm" or not parts[2] or not parts[3]:
        raise ValueError(
            "a livemetrics key looks like lm_sk_<id>_<secret> (server) or lm_pk_<id>_<secret> "
            "(browser); this one does not"
        )
    if parts[1] not in ("pk", "sk"):
        raise ValueError(
            f"an lm_{parts[1]}_ key cannot send events: use a server key (lm_sk_) or a browser key (lm_pk_)"
        )
    return Key(parts[1], parts[2], parts[3], presented)


def sign(secret: str, timestamp: str, body: bytes, backfill: bool) -> str:
    """``v2=<hex HMAC-SHA256(secret, "<timestamp>.<0|1>." + body)>``: the backfill flag is covered, so no one
    relaying a signed request can turn live events into backfill or back."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{int(backfill)}.".encode() + body, hashlib.sha256)
    return "v2=" + mac.hexdigest()


def auth_headers(key: Key, body: bytes, backfill: bool) -> dict[str, str]:
    """The headers that authenticate one request. A server key signs with a millisecond timestamp taken
    now, so a retry of the same body carries a new signature (the gateway refuses a replayed one)."""
    if key.kind == "sk":
        ts = f"{time.time():.3f}"
        return {
            "X-Livemetrics-Key-Id": key.key_id,
            "X-Livemetrics-Timestamp": ts,
            "X-Livemetrics-Signature": sign(key.secret, ts, body, backfill),
        }
    return {"Authorization": f"Bearer {key.presented}"}
