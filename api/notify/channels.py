"""Each seller's notification channels (webhooks, email addresses), kept in the compacted
``seller-channels`` topic like seller keys (livemetrics/keys.py): every API replica reads it whole and
follows it, so a channel added on one replica is used by the notifier of any other within a moment.

A webhook's signing secret is stored sealed (AES-256-GCM, key derived with HKDF from the
``key_encryption_key`` setting; channel id and seller as associated data, so a sealed secret copied onto
another seller's record does not open). A deleted channel is a tombstone.

A channel whose target holds a card number (by the gateway's rule; the API has refused such targets since
da72474, but records written before stay in the topic until removed) is read with the card number blanked
and ``blocked`` saying why (``usable``): nothing is sent to it (each delivery is recorded failed with that reason), and
the card number goes nowhere further, neither into the deliveries' rows nor into the API's answers.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import secrets
import threading
import time

import msgspec
from confluent_kafka import KafkaError, Message, Producer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from api.notify.rules import Rules
from livemetrics.card_data import REDACTED
from livemetrics.card_numbers import blank_card_numbers, card_in_string
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
    blocked: str = ""  # why nothing is sent to it: its target held a card number, now blanked (``usable``)

    def public(self) -> dict:
        """What the API shows: everything but the sealed secret (and ``blocked`` only when it is)."""
        out = {
            "channel_id": self.channel_id,
            "kind": self.kind,
            "target": self.target,
            "created_at": self.created_at,
            "can_read_pii": self.can_read_pii,
            "rules": msgspec.to_builtins(self.rules or Rules()),
        }
        if self.blocked:
            out["blocked"] = self.blocked
        return out


def usable(ch: Channel) -> Channel:
    """``ch`` as it may be used: when its target holds a card number, with that number blanked (the whole
    target when it is encoded) and ``blocked`` saying why nothing is sent to it. Such a record was stored
    before the API refused card numbers in targets (da72474); the seller removes it and adds the target again
    without the card number. A blocked record written back (its rules changed) stays blocked, blanked."""
    if ch.blocked or not card_in_string(ch.target):
        return ch
    target = blank_card_numbers(ch.target, REDACTED)
    if card_in_string(target):
        target = REDACTED
    what = "webhook URL" if ch.kind == "webhook" else "email address"
    why = (
        f"not sent: this channel's {what} holds a card number (stored before such targets were refused); card "
        "data is never forwarded: remove the channel and add it again without the card number"
    )
    return msgspec.structs.replace(ch, target=target, blocked=why)


@functools.lru_cache(maxsize=4)  # derived once per key-encryption key, not on every webhook POST
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


class ChannelWriter:
    """Writes channel records through one producer kept for the process's life: a short-lived producer
    per write spent ~0.5 s connecting and initialising its idempotent session each time (1,000 webhooks
    took ~8 minutes to add). Each write still waits until Kafka has the record; threads may share it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def _get(self) -> Producer:
        with self._lock:
            if self._producer is None:  # the api principal writes its sellers' channels
                self._producer = Producer(producer_config(self.settings, log_level=4))
            return self._producer

    def write(self, key: str, value: bytes | None) -> None:
        """One record (``value`` None: a tombstone); ``RuntimeError`` when Kafka did not confirm it in time."""
        p, done, err = self._get(), threading.Event(), []

        def delivered(e: KafkaError | None, _msg: Message) -> None:
            if e:
                err.append(e)
            done.set()

        p.produce(self.settings.topic("seller-channels"), key=key.encode(), value=value, on_delivery=delivered)
        deadline = time.monotonic() + self.settings.delivery_timeout_ms / 1000 + 5
        while not done.is_set() and time.monotonic() < deadline:
            p.poll(0.05)  # serves this write's callback (or another thread's: each sets its own event)
        if err or not done.is_set():
            raise RuntimeError(f"could not store the channel in Kafka: {err[0] if err else 'timed out'}")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)


class ChannelBook(CompactedFollower):
    """Reads the whole ``seller-channels`` topic, then follows it in a background thread."""

    def __init__(self, settings: Settings):
        super().__init__(settings, "seller-channels", "seller-channels")
        self._channels: dict[str, Channel] = {}
        self._by_seller: dict[str, dict[str, Channel]] = {}  # seller -> channel id -> channel
        self.skipped = 0
        self._writer = ChannelWriter(settings)

    def start(self, wait_s: float = 15.0) -> ChannelBook:
        self.start_following(wait_s)
        return self

    def stop(self) -> None:
        super().stop()
        self._writer.close()

    # --- writes (a replica sees its own write at once; the others when they read it) -----------
    def add(self, ch: Channel) -> None:
        self._writer.write(ch.channel_id, _enc.encode(ch))
        self._put(ch)

    def remove(self, ch: Channel) -> None:
        self._writer.write(ch.channel_id, None)
        self._drop(ch.channel_id)

    # --- reads ---------------------------------------------------------------------------------
    def get(self, channel_id: str) -> Channel | None:
        return self._channels.get(channel_id)

    def of_seller(self, seller_id: str, kind: str | None = None) -> list[Channel]:
        """Through a per-seller index: the notifier asks for every alert (a scan of all channels cost
        1,000 x 1,000 steps per round of the 1,000-seller bench)."""
        mine = list(self._by_seller.get(seller_id, {}).values())
        return sorted((c for c in mine if kind is None or c.kind == kind), key=lambda c: c.created_at)

    def _put(self, ch: Channel) -> None:
        self._drop(ch.channel_id)  # its seller cannot change, but a record may claim another: follow it
        self._channels[ch.channel_id] = ch
        self._by_seller.setdefault(ch.seller_id, {})[ch.channel_id] = ch

    def _drop(self, channel_id: str) -> None:
        old = self._channels.pop(channel_id, None)
        if old is not None:
            rest = self._by_seller.get(old.seller_id, {})
            rest.pop(channel_id, None)
            if not rest:
                self._by_seller.pop(old.seller_id, None)

    def _apply(self, msg: Message) -> None:
        """One record in; a malformed one is logged and skipped (it must not stop the later ones)."""
        try:
            key = msg.key().decode()
            if msg.value() is None:
                self._drop(key)
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
        ch, stored = usable(ch), ch
        if ch is not stored:
            log.warning(
                "channel %s of seller %s holds a card number in its target: blocked, nothing is sent to it",
                ch.channel_id,
                ch.seller_id,
            )
        self._put(ch)
