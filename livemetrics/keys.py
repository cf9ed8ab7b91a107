"""Seller keys and tokens, kept in the compacted ``seller-keys`` topic so that every gateway and API
replica sees additions and revocations within a moment, with no extra database.

Formats (the secret part is never stored, only its SHA-256):
- ``lm_pk_<id>_<secret>``: browser key, public, write-only (page, checkout and payment events);
- ``lm_sk_<id>_<secret>``: server key, secret, HMAC-signed requests. HMAC needs the secret on the
  verifying side, so server keys also store it sealed (AES-256-GCM, key derived with HKDF from the
  ``key_encryption_key`` setting, key id and seller as associated data): see docs/ingest.md;
- ``lm_st_<id>_<secret>``: seller token, reads one seller's data on the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from confluent_kafka import Message
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from livemetrics import compacted
from livemetrics.compacted import CompactedFollower
from livemetrics.kafka_config import as_admin, record_producer_config
from livemetrics.key_format import KINDS, format_key, sign, split_key
from livemetrics.settings import Settings

__all__ = [
    "KINDS",
    "KeyRecord",
    "KeyRegistry",
    "Principal",
    "new_key",
    "new_server_key",
    "publish",
    "sign",
    "split_key",
]
log = logging.getLogger(__name__)


class KeyRecord(msgspec.Struct, omit_defaults=True):
    key_id: str
    kind: str  # browser | server | token
    seller_id: str
    hash: str
    created_at: int
    revoked: bool = False
    label: str = ""
    expires_at: int = 0  # epoch s; 0 = never
    can_read_pii: bool = True
    rate_per_s: int = 0  # 0 = the default limit
    secret_enc: str = ""  # server keys: the secret, sealed with the deployment's key-encryption key
    # Browser keys: the web origins (``https://shop.example``) whose pages may send with the key; empty is
    # refused outside dev mode. Server keys are never origin-checked (docs/security.md, Browser keys).
    origins: list[str] = []
    event_types: list[str] = []  # the event types the key may send; empty: all


@dataclass(frozen=True)
class Principal:
    seller_id: str | None  # None for the admin
    kind: str
    key_id: str
    can_read_pii: bool = True

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(kind_code: str, seller_id: str, label: str = "", **extra: Any) -> tuple[str, KeyRecord]:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    rec = KeyRecord(
        key_id=key_id,
        kind=KINDS[kind_code],
        seller_id=seller_id,
        hash=_hash(secret),
        created_at=int(time.time()),
        label=label,
        **extra,
    )
    return format_key(kind_code, key_id, secret), rec


def _aead(kek: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"livemetrics seller-keys v1").derive(kek.encode())
    return AESGCM(key)


def _aad(rec: KeyRecord) -> bytes:
    return f"{rec.key_id}:{rec.seller_id}:{rec.kind}".encode()


def seal(rec: KeyRecord, secret: str, kek: str) -> str:
    """The secret encrypted for the record (nonce + ciphertext, base64)."""
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(nonce + _aead(kek).encrypt(nonce, secret.encode(), _aad(rec))).decode()


def unseal(rec: KeyRecord, kek: str) -> str | None:
    """The record's secret, or None when it has none or it cannot be opened (wrong key, tampered)."""
    if not rec.secret_enc:
        return None
    try:
        raw = base64.urlsafe_b64decode(rec.secret_enc.encode())
        secret = _aead(kek).decrypt(raw[:12], raw[12:], _aad(rec)).decode()
    except Exception:  # noqa: BLE001 - InvalidTag, bad base64: the secret is unusable either way
        return None
    return secret if hmac.compare_digest(_hash(secret), rec.hash) else None


def new_server_key(seller_id: str, kek: str, label: str = "server", **extra: Any) -> tuple[str, KeyRecord]:
    """A server key; its record carries the sealed secret so that gateways can verify signatures."""
    presented, rec = new_key("sk", seller_id, label=label, **extra)
    secret = presented.split("_", 3)[3]
    return presented, msgspec.structs.replace(rec, secret_enc=seal(rec, secret, kek))


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(KeyRecord)


def publish(settings: Settings, rec: KeyRecord) -> None:
    publish_all(settings, [rec])


def publish_all(settings: Settings, recs: list[KeyRecord]) -> None:
    """The records through one short-lived producer (``compacted.publish_all``)."""
    # librdkafka's info line about purging its idle background queue on shutdown is noise in
    # `sellers add` / `livemetrics up` output, so only warnings and errors show.
    conf = record_producer_config(as_admin(settings), log_level=4)  # in secure mode only the admin writes keys
    compacted.publish_all(
        conf,
        settings.topic("seller-keys"),
        [(rec.key_id, _enc.encode(rec)) for rec in recs],
        "key",
        settings.delivery_timeout_ms / 1000 + 5,
    )


class KeyRegistry(CompactedFollower):
    """Reads the whole ``seller-keys`` topic, then follows it in a background thread."""

    def __init__(self, settings: Settings):
        super().__init__(settings, "seller-keys", "key-registry")
        self._records: dict[str, KeyRecord] = {}
        self._secrets: dict[str, tuple[KeyRecord, str]] = {}
        # called with each changed KeyRecord (e.g. to close sockets on revoke)
        self.listeners: list[Callable[[KeyRecord], None]] = []
        self.skipped = 0  # malformed records skipped (logged)

    def start(self, wait_s: float = 15.0) -> KeyRegistry:
        self.start_following(wait_s)
        return self

    def _apply(self, msg: Message) -> None:
        """Take one record of the topic in. A malformed one (not JSON, wrong fields, no key) is logged and
        skipped: one bad record must not stop every later key and revocation from arriving."""
        try:
            value = msg.value()
            if value is None:  # a tombstone: the key is gone
                self._records.pop(msg.key().decode(), None)  # type: ignore[union-attr]  # no key: skipped below
                return
            rec = _dec.decode(value)
            if rec.kind not in KINDS.values() or not rec.key_id or not rec.seller_id:
                raise ValueError(f"kind {rec.kind!r}, key_id {rec.key_id!r}, seller_id {rec.seller_id!r}")
        except Exception as exc:  # noqa: BLE001 - msgspec errors, a missing or non-UTF-8 key, the check above
            self.skipped += 1
            log.warning(
                "malformed seller-keys record at %s[%s]@%s skipped: %s",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                str(exc)[:200] or type(exc).__name__,
            )
            return
        self._records[rec.key_id] = rec
        for fn in list(self.listeners):
            try:
                fn(rec)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop key updates
                log.exception("a seller-keys listener failed on key %s", rec.key_id)

    # --- queries -----------------------------------------------------------------------------
    def record(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id)

    def records(self) -> list[KeyRecord]:
        return list(self._records.values())

    def authenticate(self, presented: str, kinds: tuple[str, ...]) -> KeyRecord | None:
        """The live record for a presented key of one of ``kinds``, else None (constant-time compare)."""
        parts = split_key(presented)
        if parts is None:
            return None
        code, key_id, secret = parts
        rec = self._records.get(key_id)
        if rec is None or rec.kind not in kinds or KINDS[code] != rec.kind:
            return None
        if not hmac.compare_digest(rec.hash, _hash(secret)):
            return None
        if rec.revoked or (rec.expires_at and rec.expires_at < time.time()):
            return None
        return rec

    def server_secret(self, key_id: str) -> tuple[KeyRecord, str] | None:
        """A live server key's record and its unsealed secret (cached: unsealing costs microseconds)."""
        rec = self.authenticate_id(key_id)
        if rec is None or rec.kind != "server":
            return None
        cached = self._secrets.get(key_id)
        if cached is None or cached[0] is not rec:
            secret = unseal(rec, self.settings.key_encryption_key.get_secret_value())
            if secret is None:
                return None
            cached = self._secrets[key_id] = (rec, secret)
        return cached

    def authenticate_id(self, key_id: str) -> KeyRecord | None:
        """The record of a key already authenticated once, if it is still valid (not revoked/expired)."""
        rec = self._records.get(key_id)
        if rec is None or rec.revoked or (rec.expires_at and rec.expires_at < time.time()):
            return None
        return rec

    def wait_for(self, key_id: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if key_id in self._records:
                return True
            time.sleep(0.05)
        return False
