"""Deliveries on the API's event loop. One queue per channel, each drained by its own task, and at most
``notify_concurrency`` sends in flight in all: a slow or dead endpoint holds up only its own queue (and one
slot, for at most ``notify_timeout_s``). A webhook gets one POST per alert; an email channel one email per
alert while the seller is under ``notify_email_max`` emails per ``notify_email_window_s``, past it one
digest of everything that waited. A failed attempt waits for its retry on a timer, off the queue; every
outcome is recorded (clickhouse/notify_deliveries.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import httpx
import msgspec

from api.notify import email_message, smtp, webhook
from api.notify.channels import ChannelBook, unseal
from api.notify.targets import TargetError, check_resolves_public
from clickhouse import notify_deliveries as store
from clickhouse.notify_deliveries import Delivery
from livemetrics.settings import Settings

log = logging.getLogger("livemetrics.api.notify")
DIGEST_MAX = 100  # alerts in one digest email


class Dispatcher:
    def __init__(self, settings: Settings, channels: ChannelBook):
        self.settings, self.channels = settings, channels
        self.queues: dict[str, deque[Delivery]] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._owed: set[str] = set()  # delivery ids queued or waiting for a retry here (one copy each)
        self._emails_sent: dict[str, deque[float]] = {}  # per seller: when its recent emails went out
        self._slots = asyncio.Semaphore(settings.notify_concurrency)
        self._client = httpx.AsyncClient(
            timeout=settings.notify_timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=settings.notify_concurrency),
        )
        self.loop = asyncio.get_running_loop()

    # --- intake (any thread) and scheduling (the loop) -----------------------------------------
    def offer_threadsafe(self, deliveries: list[Delivery]) -> None:
        self.loop.call_soon_threadsafe(self.schedule_all, deliveries)

    def schedule_all(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            self.schedule(d)

    def owes(self, delivery_id: str) -> bool:
        return delivery_id in self._owed

    def schedule(self, d: Delivery) -> None:
        """Send ``d`` at its ``next_ms``; a delivery already owed here is not taken twice (the intake can hand
        over again what the previous run recorded)."""
        if d.delivery_id in self._owed:
            return
        self._owed.add(d.delivery_id)
        delay = d.next_ms / 1000 - time.time()
        if delay <= 0:
            self.enqueue(d)
            return
        handle = self.loop.call_later(delay, self._due, d)
        self._timers.add(handle)

    def _due(self, d: Delivery) -> None:
        self._timers = {h for h in self._timers if not h.cancelled() and h.when() > self.loop.time()}
        self.enqueue(d)

    def enqueue(self, d: Delivery) -> None:
        self.queues.setdefault(d.channel_id, deque()).append(d)
        if d.channel_id not in self._tasks:
            self._tasks[d.channel_id] = self.loop.create_task(self._drain(d.channel_id))

    async def _drain(self, channel_id: str) -> None:
        try:
            q = self.queues[channel_id]
            while q:
                ch = self.channels.get(channel_id)
                email = ch is not None and ch.kind == "email"
                if email:
                    await self._email_turn(ch.seller_id)  # rate limit: what arrives meanwhile joins the digest
                batch = [q.popleft() for _ in range(min(len(q), DIGEST_MAX if email else 1))]
                try:
                    error = (
                        "the channel was removed"
                        if ch is None
                        else await self._email(ch, batch)
                        if email
                        else await self._post(ch, batch[0])
                    )
                except Exception as exc:  # noqa: BLE001 - a bug must not strand the delivery: it is retried
                    log.exception("notifier: sending to channel %s failed unexpectedly", channel_id)
                    error = f"internal error while sending: {type(exc).__name__}"
                await self._settle(batch, ch, error)
        finally:
            self._tasks.pop(channel_id, None)
            if not self.queues.get(channel_id):
                self.queues.pop(channel_id, None)

    # --- one attempt ---------------------------------------------------------------------------
    async def _settle(self, batch: list[Delivery], ch, error: str | None) -> None:
        """Record the attempt's outcome for each delivery; schedule a retry or keep it failed."""
        s = self.settings
        now_ms = int(time.time() * 1000)
        done = []
        for d in batch:
            attempt = d.attempts + 1
            if error is None:
                done.append(d.but(status="delivered", attempts=attempt, last_error="", next_ms=now_ms))
                continue
            delay = webhook.retry_delay(attempt, s.notify_backoff_s, s.notify_backoff_max_s)
            if ch is None or webhook.give_up(d.created_ms, now_ms, delay, s.notify_retry_for_s):
                done.append(d.but(status="failed", attempts=attempt, last_error=error, next_ms=now_ms))
                log.warning(
                    "delivery failed for good",
                    extra={"seller_id": d.seller_id, "delivery_id": d.delivery_id, "attempts": attempt, "error": error},
                )
            else:
                done.append(
                    d.but(status="pending", attempts=attempt, last_error=error, next_ms=now_ms + int(delay * 1000))
                )
        try:
            await asyncio.to_thread(store.record, s, done)
        except Exception as exc:  # noqa: BLE001 - the outcome is not stored; the deliveries go on in memory
            log.warning("notifier: could not record %d deliveries: %s", len(done), str(exc)[:200])
        for new in done:
            self._owed.discard(new.delivery_id)
            if new.status == "pending":
                self.schedule(new)

    async def _email_turn(self, seller_id: str) -> None:
        """Wait until the seller may get another email (at most notify_email_max per window)."""
        s = self.settings
        sent = self._emails_sent.setdefault(seller_id, deque())
        while True:
            now = time.monotonic()
            while sent and sent[0] <= now - s.notify_email_window_s:
                sent.popleft()
            if len(sent) < s.notify_email_max:
                sent.append(now)
                return
            await asyncio.sleep(sent[0] + s.notify_email_window_s - now)

    async def _email(self, ch, batch: list[Delivery]) -> str | None:
        s = self.settings
        alerts = [msgspec.json.decode(d.body) for d in batch]
        msg = email_message.build(
            alerts, ch.seller_id, ch.target, s.smtp_from, s.public_url or f"http://{s.host}:{s.api_port}"
        )
        async with self._slots:
            return await asyncio.to_thread(smtp.send, s, msg)

    async def _post(self, ch, d: Delivery) -> str | None:
        """None when the endpoint answered 2xx, else what went wrong (shown to the seller)."""
        secret = unseal(ch, self.settings.key_encryption_key.get_secret_value())
        if secret is None:
            return "the signing secret cannot be opened (was the key-encryption key changed?): add the webhook again"
        try:
            await asyncio.to_thread(check_resolves_public, ch.target, self.settings.dev_mode)
        except TargetError as exc:
            return str(exc)
        async with self._slots:
            try:
                r = await self._client.post(
                    ch.target,
                    content=d.body,
                    headers=webhook.headers(
                        secret, int(time.time()), d.body, d.alert_id, d.delivery_id, d.attempts + 1
                    ),
                )
            except httpx.TimeoutException:
                return f"no answer within {self.settings.notify_timeout_s:g} s"
            except httpx.HTTPError as exc:
                return f"could not reach the endpoint: {type(exc).__name__}: {str(exc)[:200]}"
        if 200 <= r.status_code < 300:
            return None
        hint = " (redirects are not followed)" if 300 <= r.status_code < 400 else ""
        return f"the endpoint answered HTTP {r.status_code}{hint}: {r.text[:200]}"

    async def close(self) -> None:
        for h in self._timers:
            h.cancel()
        for t in list(self._tasks.values()):
            t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self._client.aclose()
