"""Alerts in, deliveries owed out: a consumer in its own group (``notify_group``) on ``payment-alerts``,
so each alert is taken by one API replica. For each alert it works out the deliveries (one per webhook of
the seller), records them as pending in ClickHouse, then commits the alert's offset, and only then hands
them to the dispatcher. (Email channels get deliveries only while ``smtp_host`` is set.) An API that dies in between finds them again: uncommitted alerts come back from
Kafka, recorded deliveries from ClickHouse (the same delivery id either way: at least once, never lost).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from confluent_kafka import Consumer, TopicPartition

from api.notify.channels import ChannelBook
from api.notify.rules import quiet_until, wants
from api.notify.webhook import delivery_id
from api.privacy import mask_alert
from clickhouse import notify_deliveries as store
from clickhouse.notify_deliveries import Delivery
from livemetrics.kafka_config import base_config
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.api.notify")
_dec = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()


def deliveries_for(alert: dict, channels: ChannelBook, now_ms: int, email: bool = True) -> list[Delivery]:
    """One pending delivery per channel of the alert's seller (email ones only when ``email``: SMTP is
    configured) whose rules want it, owed from now or from the end of the channel's quiet hours; masked
    for a channel without the PII right."""
    seller, alert_id = alert.get("seller_id") or "", str(alert.get("alert_id") or alert.get("event_id") or "")
    if not seller or not alert_id:
        return []
    out = []
    for ch in channels.of_seller(seller):
        if (ch.kind == "email" and not email) or not wants(ch.rules, alert):
            continue
        quiet = quiet_until(ch.rules, datetime.fromtimestamp(now_ms / 1000, UTC))
        start_ms = int(quiet.timestamp() * 1000) if quiet else now_ms
        body = _enc.encode(alert if ch.can_read_pii else mask_alert(alert))
        out.append(
            Delivery(
                seller_id=seller,
                delivery_id=delivery_id(seller, alert_id, ch.channel_id),
                alert_id=alert_id,
                alert_kind=str(alert.get("kind") or ""),
                channel_id=ch.channel_id,
                target=ch.target,
                body=body,
                created_ms=start_ms,
                next_ms=start_ms,
            )
        )
    return out


class AlertIntake:
    def __init__(self, settings: Settings, channels: ChannelBook, hand_off: Callable[[list[Delivery]], None]):
        self.settings, self.channels, self.hand_off = settings, channels, hand_off
        self.assigned = threading.Event()  # partitions assigned and their start positions fixed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AlertIntake:
        self._thread = threading.Thread(target=self._run, name="notify-intake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(15)

    def _on_assign(self, c: Consumer, parts: list[TopicPartition]) -> None:
        """A partition the group never committed starts at its end, read now (an alert produced while the
        fetcher resolved a lazy ``latest`` would be skipped): alerts from before the first start are not sent."""
        try:
            committed = c.committed(parts, timeout=10)
            for tp, done in zip(parts, committed):
                tp.offset = done.offset if done.offset >= 0 else c.get_watermark_offsets(tp, timeout=10)[1]
        except Exception:  # noqa: BLE001 - fall back to the group's reset policy
            log.warning("notifier: could not read committed offsets; using auto.offset.reset")
        c.assign(parts)
        self.assigned.set()

    def _run(self) -> None:
        s = self.settings
        c = Consumer(
            {
                **base_config(s),
                "group.id": s.notify_group,
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
                "session.timeout.ms": int(s.consumer_session_timeout_s * 1000),
            }
        )
        c.subscribe(
            [s.topic("payment-alerts")], on_assign=self._on_assign, on_revoke=lambda c_, p: self.assigned.clear()
        )
        try:
            while not self._stop.is_set():
                msgs = c.consume(500, 0.2)
                good = [m for m in msgs if not m.error()]
                if not good:
                    continue
                now_ms = int(time.time() * 1000)
                owed: list[Delivery] = []
                for m in good:
                    try:
                        alert = _dec.decode(m.value())
                    except msgspec.DecodeError:
                        continue  # the sink keeps the topic's record of what could not be read
                    if not isinstance(alert, dict):
                        continue
                    try:
                        owed += deliveries_for(alert, self.channels, now_ms, email=bool(s.smtp_host))
                    except Exception:  # noqa: BLE001 - one odd alert must not stop the notifier
                        log.exception("notifier: alert at %s[%s]@%s skipped", m.topic(), m.partition(), m.offset())
                if not self._record(owed):
                    return  # stopping: the alerts are not committed, the next start takes them again
                try:
                    c.commit(asynchronous=False)
                except Exception as exc:  # noqa: BLE001 - a rebalance: the new owner reads them again (same ids)
                    log.warning("notifier: offset commit failed: %s", exc)
                if owed:
                    self.hand_off(owed)
        finally:
            c.close()

    def _record(self, owed: list[Delivery]) -> bool:
        """Store the deliveries as pending; ClickHouse unreachable: retry (alerts wait, nothing is lost)."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                store.record(self.settings, owed)
                return True
            except Exception as exc:  # noqa: BLE001 - any failure: try again, commit nothing meanwhile
                log.warning("notifier: could not record %d deliveries, retrying: %s", len(owed), str(exc)[:200])
                self._stop.wait(delay)
                delay = min(delay * 2, 10)
        return False
