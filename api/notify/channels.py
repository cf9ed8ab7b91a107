"""Each seller's notification channels (webhooks, email addresses), kept in the compacted
``seller-channels`` topic like seller keys (livemetrics/keys.py): every API replica reads it whole and
follows it, so a channel added on one replica is used by the notifier of any other within a moment.

A webhook's signing secret is stored sealed (AES-256-GCM, key derived with HKDF from the
``key_encryption_key`` setting; channel id and seller as associated data, so a sealed secret copied onto
another seller's record does not open). A deleted channel is a tombstone.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import time

import msgspec
from confluent_kafka import Message
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from api.notify.rules import Rules
from livemetrics import compacted
from livemetrics.compacted import CompactedFollower
from livemetrics.kafka_config import producer_config
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.api.channels")
KINDS = ("webhook", "email")


class Channel(msgspec.Struct, omit_defaults=True):
    channel_id: str
    seller_id: str
    kind: str  # webhook | email
    target: str  # the webhook URL or the email address
    created_at: int
    created_by: str = ""  # the key id of the token that added it
    can_read_pii: bool = True  # the adding token's right: alerts are masked for the channel without it
    secret_enc: str = ""  # webhooks: the signing secret, sealed
    rules: Rules | None = None  # which alerts, when (api/notify/rules.py); None: every alert at once

    def public(self) -> dict:
        """What the API shows: everything but the sealed secret."""
        return {
            "channel_id": self.channel_id,
            "kind": self.kind,
            "target": self.target,
            "created_at": self.created_at,
            "can_read_pii": self.can_read_pii,
            "rules": msgspec.to_builtins(self.rules or Rules()),
        }


def _aead(kek: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"livemetrics seller-channels v1").derive(
        kek.encode()
    )
    return AESGCM(key)


def _aad(ch: Channel) -> bytes:
    return f"{ch.channel_id}:{ch.seller_id}:{ch.kind}".encode()


def new_channel(
    seller_id: str, kind: str, target: str, kek: str, created_by: str = "", can_read_pii: bool = True
) -> tuple[Channel, str]:
    """A channel and, for a webhook, its signing secret (``whsec_...``, shown to the seller once)."""
    ch = Channel(
        channel_id=f"ch_{secrets.token_hex(8)}",
        seller_id=seller_id,
        kind=kind,
        target=target,
        created_at=int(time.time()),
        created_by=created_by,
        can_read_pii=can_read_pii,
    )
    if kind != "webhook":
        return ch, ""
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    nonce = os.urandom(12)
    sealed = base64.urlsafe_b64encode(nonce + _aead(kek).encrypt(nonce, secret.encode(), _aad(ch))).decode()
    return msgspec.structs.replace(ch, secret_enc=sealed), secret


def unseal(ch: Channel, kek: str) -> str | None:
    """The webhook's signing secret, or None when it cannot be opened (wrong key, tampered, copied)."""
    try:
        raw = base64.urlsafe_b64decode(ch.secret_enc.encode())
        return _aead(kek).decrypt(raw[:12], raw[12:], _aad(ch)).decode()
    except Exception:  # noqa: BLE001 - InvalidTag, bad base64: unusable either way
        return None


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Channel)


def _produce(settings: Settings, key: str, value: bytes | None) -> None:
    conf = producer_config(settings, log_level=4)  # the api principal writes its sellers' channels
    compacted.publish(
        conf, settings.topic("seller-channels"), key, value, "channel", settings.delivery_timeout_ms / 1000 + 5
    )


class ChannelBook(CompactedFollower):
    """Reads the whole ``seller-channels`` topic, then follows it in a background thread."""

    def __init__(self, settings: Settings):
        super().__init__(settings, "seller-channels", "seller-channels")
        self._channels: dict[str, Channel] = {}
        self.skipped = 0

    def start(self, wait_s: float = 15.0) -> ChannelBook:
        self.start_following(wait_s)
        return self

    # --- writes (a replica sees its own write at once; the others when they read it) -----------
    def add(self, ch: Channel) -> None:
        _produce(self.settings, ch.channel_id, _enc.encode(ch))
        self._channels[ch.channel_id] = ch

    def remove(self, ch: Channel) -> None:
        _produce(self.settings, ch.channel_id, None)
        self._channels.pop(ch.channel_id, None)

    # --- reads ---------------------------------------------------------------------------------
    def get(self, channel_id: str) -> Channel | None:
        return self._channels.get(channel_id)

    def of_seller(self, seller_id: str, kind: str | None = None) -> list[Channel]:
        return sorted(
            (c for c in list(self._channels.values()) if c.seller_id == seller_id and (kind is None or c.kind == kind)),
            key=lambda c: c.created_at,
        )

    def _apply(self, msg: Message) -> None:
        """One record in; a malformed one is logged and skipped (it must not stop the later ones)."""
        try:
            key = msg.key().decode()
            if msg.value() is None:
                self._channels.pop(key, None)
                return
            ch = _dec.decode(msg.value())
            if ch.kind not in KINDS or not ch.seller_id or ch.channel_id != key:
                raise ValueError(f"kind {ch.kind!r}, seller_id {ch.seller_id!r}, channel_id {ch.channel_id!r}")
        except Exception as exc:  # noqa: BLE001 - msgspec errors, a missing key, the check above
            self.skipped += 1
            log.warning(
                "malformed seller-channels record at %s[%s]@%s skipped: %s",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                str(exc)[:200] or type(exc).__name__,
            )
            return
        self._channels[ch.channel_id] = ch
