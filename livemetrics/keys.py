"""Seller keys and tokens, kept in the compacted ``seller-keys`` topic so that every gateway and API
replica sees additions and revocations within a moment, with no extra database.

Formats (the secret part is never stored, only its SHA-256):
- ``lm_pk_<id>_<secret>``: browser key, public, write-only (page, checkout and payment events);
- ``lm_sk_<id>_<secret>``: server key, secret, HMAC-signed requests;
- ``lm_st_<id>_<secret>``: seller token, reads one seller's data on the API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import msgspec
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from livemetrics.kafka_config import base_config, producer_config
from livemetrics.settings import Settings

KINDS = {"pk": "browser", "sk": "server", "st": "token"}


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


def new_key(kind_code: str, seller_id: str, label: str = "", **extra) -> tuple[str, KeyRecord]:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    rec = KeyRecord(key_id=key_id, kind=KINDS[kind_code], seller_id=seller_id, hash=_hash(secret),
                    created_at=int(time.time()), label=label, **extra)
    return f"lm_{kind_code}_{key_id}_{secret}", rec


def split_key(presented: str) -> tuple[str, str, str] | None:
    parts = presented.split("_", 3)
    if len(parts) != 4 or parts[0] != "lm" or parts[1] not in KINDS:
        return None
    return parts[1], parts[2], parts[3]


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(KeyRecord)


def publish(settings: Settings, rec: KeyRecord) -> None:
    p = Producer(producer_config(settings))
    err: list[Exception] = []
    p.produce(settings.topic("seller-keys"), key=rec.key_id.encode(), value=_enc.encode(rec),
              on_delivery=lambda e, m: err.append(e) if e else None)
    if p.flush(settings.delivery_timeout_ms / 1000 + 5) or err:
        raise RuntimeError(f"could not store the key in Kafka: {err[0] if err else 'timed out'}")


class KeyRegistry:
    """Reads the whole ``seller-keys`` topic, then follows it in a background thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._records: dict[str, KeyRecord] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listeners: list = []  # called with each changed KeyRecord (e.g. to close sockets on revoke)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, wait_s: float = 15.0) -> "KeyRegistry":
        self._thread = threading.Thread(target=self._run, name="key-registry", daemon=True)
        self._thread.start()
        self._ready.wait(wait_s)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def _run(self) -> None:
        topic = self.settings.topic("seller-keys")
        c = Consumer({**base_config(self.settings), "group.id": "unused", "enable.auto.commit": False,
                      "enable.partition.eof": True})
        try:
            while not self._stop.is_set():
                try:
                    md = c.list_topics(topic, timeout=5)
                    parts = list(md.topics[topic].partitions) if topic in md.topics and not md.topics[topic].error else []
                except Exception:  # noqa: BLE001 - broker not up yet; keep trying
                    parts = []
                if parts:
                    break
                time.sleep(0.5)
            else:
                return
            c.assign([TopicPartition(topic, p, 0) for p in parts])  # offset 0: read it all
            eof: set[int] = set()
            while not self._stop.is_set():
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(msg.partition())
                        if len(eof) == len(parts):
                            self._ready.set()
                    continue
                if msg.value() is None:
                    self._records.pop(msg.key().decode(), None)
                    continue
                rec = _dec.decode(msg.value())
                self._records[rec.key_id] = rec
                for fn in list(self.listeners):
                    try:
                        fn(rec)
                    except Exception:  # noqa: BLE001 - a listener's bug must not stop key updates
                        pass
        finally:
            c.close()

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
