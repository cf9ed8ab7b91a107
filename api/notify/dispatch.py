"""Deliveries on the API's event loop. One queue per channel, each drained by its own task, and at most
``notify_concurrency`` sends in flight in all, ``notify_seller_concurrency`` of one seller's: a slow or dead
endpoint holds up only its own queue (and one slot, for at most ``notify_timeout_s``), a seller's hanging
endpoints only its own share of the slots. A webhook whose last attempt did not end within half the timeout
(no answer, a connection that took that long) sends through ``notify_slow_lane`` slots of their own until an
attempt of it ends in time again: the main slots are held only by endpoints that answered last time, and by any
attempt for ``notify_main_hold_s`` at most (then it ends counted in the slow lane). A webhook
gets one POST per alert, over connections kept open per endpoint (as many as the sends in flight); an email
channel one email per alert while the seller is under ``notify_email_max`` emails per
``notify_email_window_s``, past it one digest of everything that waited. A channel owes at most
``notify_channel_backlog`` deliveries here at once (queued, sending or waiting for a retry): a new one past it
is recorded failed at once, saying why, for the seller to redeliver. A browser key is public, so alerts can
come faster than an endpoint (or an email rate) takes them; without the bound a channel's queue grew in memory
for as long as that lasted. A failed attempt waits for its retry on a timer, off the queue; every outcome is
recorded (api/notify/outcomes.py, in batches, off the send path). A webhook host that is a name is resolved
(and checked, api/notify/targets.py) in a pool of its own, so lookups never queue behind other blocking work.

Only deliveries of sellers this notifier owns (api/notify/ownership.py) are sent here: others are dropped
when offered (their owner has them from ClickHouse), and when a partition is revoked ``release`` drops what
waits for its sellers, waits for their sends under way and stores their outcomes before the next owner
reads them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import aiohttp
import msgspec

from api.notify import egress, email_message, smtp, timing, webhook
from api.notify.channels import ChannelBook, unseal
from api.notify.outcomes import OutcomeLog
from api.notify.targets import TargetError, check_resolves_public, host_is_address
from clickhouse import notify_deliveries as store
from clickhouse.notify_deliveries import Delivery
from livemetrics.outage_log import Outage
from livemetrics.settings import Settings
from livemetrics.shares import Shares as _Shares

log = logging.getLogger("livemetrics.api.notify")
DIGEST_MAX = 100  # alerts in one digest email
DNS_THREADS = 16  # webhook host names resolved at once
# Of those, one seller's lookups at most: a seller whose names resolve slowly (its own DNS server answering
# late, each lookup held up to the resolver's timeouts, ~10-30 s) held a thread per channel, and two such
# sellers with 10 webhooks each held all 16, so every other seller's deliveries waited for their lookups.
DNS_PER_SELLER = 2
# Emails are sent (smtplib, blocking) in a pool of their own, never the loop's default executor: that one (6
# threads on 2 cores) runs every ClickHouse read of the API's routes, and 40 sellers' alert emails to an SMTP
# server that is slow or hangs held all of it for the timeout, so every seller's reports waited. Nor do they
# take the webhooks' send slots: a broken SMTP server holds none of them.
SMTP_THREADS = 8
SETTLED_KEPT_NS = 600 * 10**9  # how long a settled delivery is remembered (a pending row read before is older)


class _Lane:
    """Send slots like a semaphore's, except that an attempt moved in from the main slots is counted without
    waiting (``take``): ``busy`` may pass ``size``, and no new attempt starts here until it is under it again."""

    def __init__(self, size: int):
        self.size, self.busy = size, 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        while self.busy >= self.size:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled():  # woken, then cancelled: the room goes to the next
                    self._wake()
                raise
        self.busy += 1

    def take(self) -> None:
        self.busy += 1

    def release(self) -> None:
        self.busy -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.busy < self.size:
            fut = self._waiters.popleft()
            if not fut.done():  # a cancelled waiter's is skipped
                fut.set_result(None)
                return


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        channels: ChannelBook,
        owns: Callable[[str], bool] = lambda _s: True,
        clickhouse: Outage | None = None,
    ):
        """``owns(seller)``: whether this notifier sends that seller's deliveries now (default: all);
        ``clickhouse``: where ClickHouse's outages are logged (once each way: livemetrics/outage_log.py)."""
        self.settings, self.channels, self.owns = settings, channels, owns
        self.queues: dict[str, deque[Delivery]] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._task_seller: dict[str, str] = {}  # channel id -> its seller, while its queue's task runs
        self._sending: set[str] = set()  # channels with an attempt under way (popped, not yet settled)
        self._timers: dict[str, tuple[asyncio.TimerHandle, Delivery]] = {}  # retries waiting, by delivery id
        # delivery id -> (channel, seller, its body's bytes): queued, sending or waiting
        self._owed: dict[str, tuple[str, str, int]] = {}
        self._owed_by_seller: dict[str, int] = {}  # how many of them each seller has, over all its channels
        self._bytes_by_seller: dict[str, int] = {}  # their bodies' bytes (an entry exactly when one is owed)
        self._bytes = 0  # every owed delivery's body's bytes
        self._owed_by_channel: dict[str, int] = {}  # how many of them each channel has
        self._full_logged: dict[str, float] = {}  # channel id -> when its full backlog was last logged
        self._settled: dict[str, int] = {}  # delivery id -> version of the last outcome recorded here
        self._settled_prune_at = 10_000
        self._emails_sent: dict[str, deque[float]] = {}  # per seller: when its recent emails went out
        self._slots = asyncio.Semaphore(settings.notify_concurrency)
        # Of those, one seller's at most: an endpoint that accepts the connection and never answers holds its
        # slot for the whole timeout, and ten sellers with 10 such webhooks each held all 100, so every other
        # seller's alerts waited. A seller's channels past its share wait in their own queues (nothing popped).
        self._seller_sends = _Shares(settings.notify_seller_concurrency)
        # Webhooks whose last attempt did not end within half the timeout send through slots of their own: 25
        # sellers with 4 hanging endpoints each still held all 100 main slots for the timeout. Each such endpoint
        # costs the main lane one attempt (its first, or the first after it answered in time again), and that one
        # for notify_main_hold_s at most: then the attempt gives its main slot back and ends counted in the slow
        # lane, which starts nothing new while such moved attempts fill it. Before, the 100 first attempts of 25
        # sellers' new hanging webhooks held every main slot for the whole timeout, and again whenever they added
        # webhooks or their endpoints answered in time now and then.
        self._slow_slots = _Lane(settings.notify_slow_lane)
        self._moved = 0  # attempts under way that left their main slot: at most notify_concurrency
        self._slow: set[str] = set()  # channel ids whose last attempt was slow
        # aiohttp, not httpx: with 100 sends in flight httpx spent ~3.7 ms of CPU per POST against ~0.15 ms
        # (measured on this machine), and CPU was what the deliveries queued for. Connections go to public
        # addresses only, checked as they are made (api/notify/egress.py), besides the check before each POST.
        self._http = egress.webhook_session(settings)
        self._dns = ThreadPoolExecutor(DNS_THREADS, thread_name_prefix="notify-dns")
        self._dns_seller = _Shares(DNS_PER_SELLER)
        self._smtp = ThreadPoolExecutor(SMTP_THREADS, thread_name_prefix="notify-smtp")
        self.outcomes = OutcomeLog(settings, clickhouse)
        self.loop = asyncio.get_running_loop()

    # --- intake (any thread) and scheduling (the loop) -----------------------------------------
    def offer_threadsafe(self, deliveries: list[Delivery]) -> None:
        self.loop.call_soon_threadsafe(self.schedule_all, deliveries)

    def schedule_all(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            self.schedule(d)

    def owes(self, delivery_id: str) -> bool:
        return delivery_id in self._owed

    def being_delivered(self, d: Delivery) -> bool:
        """Whether ``d`` (as stored) is owed already: here if its seller is this notifier's, else by its
        row (its owner holds every pending delivery of its sellers)."""
        return self.owes(d.delivery_id) if self.owns(d.seller_id) else d.status == "pending"

    def _forget_settled(self) -> None:
        """Keep settled deliveries for SETTLED_KEPT_NS only (a pending row read longer ago is not acted on)."""
        horizon = store.versions(1)[0] - SETTLED_KEPT_NS
        self._settled = {k: v for k, v in self._settled.items() if v > horizon}
        self._settled_prune_at = max(10_000, 2 * len(self._settled))  # pruning stays rare however busy
        self._slow = {c for c in self._slow if self.channels.get(c) is not None}  # removed channels' go

    def backlog(self) -> dict[str, int]:
        """Deliveries owed here (queued, sending or waiting for a retry) and those queued now."""
        return {
            "deliveries_owed": len(self._owed),
            "deliveries_queued": sum(len(q) for q in self.queues.values()),
            "deliveries_owed_bytes": self._bytes,
        }

    def adopt(self, pending: list[Delivery]) -> int:
        """Schedule pending rows read from ClickHouse of sellers this dispatcher owns that it neither owes
        nor has settled since (a redelivery asked for through another API, the deliveries of a partition
        just assigned); how many were new."""
        self._forget_settled()
        new = [
            d
            for d in pending
            if d.delivery_id not in self._owed
            and self._settled.get(d.delivery_id, 0) < d.version
            and self.owns(d.seller_id)
        ]
        self.schedule_all(new)
        return len(new)

    def schedule(self, d: Delivery, retry: bool = False) -> None:
        """Send ``d`` at its ``next_ms``; a delivery already owed here is not taken twice (the intake can hand
        over again what the previous run recorded), nor one of a seller this notifier does not own. ``retry``:
        ``d`` was owed until its attempt failed just now (the notifier's own bound does not refuse it)."""
        if d.delivery_id in self._owed:
            return
        if not self.owns(d.seller_id):
            self._let_go(d.delivery_id)
            return
        why = self._over(d, retry)
        if why:
            self._refuse(d, why)
            return
        size = len(d.body)
        self._owed[d.delivery_id] = (d.channel_id, d.seller_id, size)
        self._owed_by_channel[d.channel_id] = self._owed_by_channel.get(d.channel_id, 0) + 1
        self._owed_by_seller[d.seller_id] = self._owed_by_seller.get(d.seller_id, 0) + 1
        self._bytes_by_seller[d.seller_id] = self._bytes_by_seller.get(d.seller_id, 0) + size
        self._bytes += size
        delay = d.next_ms / 1000 - time.time()
        if delay <= 0:
            self.enqueue(d)
            return
        self._timers[d.delivery_id] = (self.loop.call_later(delay, self._due, d), d)

    def _over(self, d: Delivery, retry: bool) -> str | None:
        """Why ``d`` may not be owed here now (a backlog it would pass), else None.

        A channel owes at most notify_channel_backlog deliveries and a seller notify_seller_backlog: each
        channel's bound alone let a seller with 10 channels owe 100,000 (each with its alert's body). A seller's
        deliveries hold at most notify_seller_backlog_bytes of bodies: a browser key's payment failure makes an
        alert of up to ~33 KB (payment items, details and message; the session's cart besides), so 20,000 of
        them held ~630 MB, 1-2 flooded sellers per GB of the notifier. And all sellers' at most
        notify_backlog_bytes: past it a seller that would hold more than its share of it (the bound over the
        sellers owing, this one counted) is refused, and one within its share goes through, in room made by
        dropping the newest waiting deliveries of the sellers most over their shares (``_make_room``: recorded
        failed, saying why, for their sellers to redeliver). Before, sellers under their share went through on
        top of the bound, and as more flooded sellers came (each share smaller) the total crept past it (ten
        one after the other: 1.8 times it), and past twice it every seller's new deliveries were refused."""
        s = self.settings
        if self._owed_by_channel.get(d.channel_id, 0) >= s.notify_channel_backlog:
            return f"this channel already owed {s.notify_channel_backlog} deliveries"
        if self._owed_by_seller.get(d.seller_id, 0) >= s.notify_seller_backlog:
            return f"this seller already owed {s.notify_seller_backlog} deliveries"
        held, size = self._bytes_by_seller.get(d.seller_id, 0), len(d.body)
        if held and held + size > s.notify_seller_backlog_bytes:
            return (
                f"this seller's owed deliveries already held {held:,} bytes of alerts, the most one seller may "
                f"(LIVEMETRICS_NOTIFY_SELLER_BACKLOG_BYTES {s.notify_seller_backlog_bytes:,})"
            )
        if retry or self._bytes + size <= s.notify_backlog_bytes:
            return None  # (a retry was owed until its attempt failed just now: the total is what it was)
        sellers = len(self._bytes_by_seller) + (0 if held else 1)
        share = s.notify_backlog_bytes // sellers
        if held + size > share:
            return (
                f"this notifier's owed deliveries held {self._bytes:,} bytes of alerts, the most it keeps "
                f"(LIVEMETRICS_NOTIFY_BACKLOG_BYTES {s.notify_backlog_bytes:,}), and this seller's {held:,}, at least "
                f"its share of them ({share:,}: the bound over the {sellers} sellers owed)"
            )
        if self._make_room(self._bytes + size - s.notify_backlog_bytes, d.seller_id, share):
            return None
        return (
            f"this notifier's owed deliveries held {self._bytes:,} bytes of alerts, the most it keeps "
            f"(LIVEMETRICS_NOTIFY_BACKLOG_BYTES {s.notify_backlog_bytes:,}), and no room could be made: the "
            "deliveries of the sellers over their shares are being sent"
        )

    def _make_room(self, need: int, seller: str, share: int) -> bool:
        """Free ``need`` bytes for ``seller``'s delivery within its ``share``: drop the newest waiting (queued,
        or waiting for a retry) deliveries of the seller most over its share, then the next, each recorded
        failed saying why (its seller redelivers it). Nothing under way is touched. Whether enough was freed
        (what was dropped stays dropped: every seller it came from held more than its share). Such a seller
        exists whenever the total is full and ``seller`` is within its share: the others hold more than
        ``share`` times their number."""
        s = self.settings
        skip: set[str] = set()  # sellers over their share with nothing waiting (all under way)
        while need > 0:
            over = [(b, v) for v, b in self._bytes_by_seller.items() if v != seller and v not in skip and b > share]
            if not over:
                return False
            held, victim = max(over)
            d = self._newest_waiting(victim)
            if d is None:
                skip.add(victim)
                continue
            why = (
                f"dropped from this notifier's owed deliveries to make room for a seller under its share: they held "
                f"{self._bytes:,} bytes of alerts, the most it keeps (LIVEMETRICS_NOTIFY_BACKLOG_BYTES "
                f"{s.notify_backlog_bytes:,}), and this seller's {held:,}, more than its share ({share:,})"
            )
            size = self._owed[d.delivery_id][2]
            self._unowe(d.delivery_id)
            self._refuse(d, why)
            need -= size
        return True

    def _newest_waiting(self, seller: str) -> Delivery | None:
        """The seller's most recently owed delivery still waiting (in its channel's queue or for a retry),
        taken out of there; None when every one it owes is under way."""
        for delivery_id in reversed(self._owed):
            channel, owner, _size = self._owed[delivery_id]
            if owner != seller:
                continue
            timer = self._timers.pop(delivery_id, None)
            if timer is not None:
                timer[0].cancel()
                return timer[1]
            q = self.queues.get(channel)
            if q:
                for i in range(len(q) - 1, -1, -1):  # the newest at the right: a few steps
                    if q[i].delivery_id == delivery_id:
                        d = q[i]
                        del q[i]
                        return d
        return None

    def _due(self, d: Delivery) -> None:
        self._timers.pop(d.delivery_id, None)
        self.enqueue(d)

    def _unowe(self, delivery_id: str) -> None:
        owed = self._owed.pop(delivery_id, None)
        if owed is not None:
            channel, seller, size = owed
            for counts, key in ((self._owed_by_channel, channel), (self._owed_by_seller, seller)):
                left = counts[key] - 1
                if left:
                    counts[key] = left
                else:
                    del counts[key]
            self._bytes -= size
            if seller in self._owed_by_seller:
                self._bytes_by_seller[seller] -= size
            else:
                del self._bytes_by_seller[seller]

    def _refuse(self, d: Delivery, why: str) -> None:
        """Record ``d`` failed without sending it: its channel's (or its seller's) backlog is full."""
        error = f"not sent: {why} (alerts came faster than it took them); redeliver it once the endpoint keeps up"
        failed = d.but(status="failed", last_error=error, next_ms=int(time.time() * 1000))
        (self._settled[d.delivery_id],) = self.outcomes.add([failed])
        if len(self._settled) > self._settled_prune_at:
            self._forget_settled()
        now = time.monotonic()
        if now - self._full_logged.get(d.channel_id, -60.0) >= 60:  # a flood: one line a minute per channel
            self._full_logged[d.channel_id] = now
            log.warning(
                "channel backlog full: new deliveries recorded failed",
                extra={"seller_id": d.seller_id, "channel_id": d.channel_id, "why": why},
            )

    def _let_go(self, delivery_id: str) -> None:
        """Neither owed nor settled here: if its seller comes back, its pending row is taken up again."""
        self._unowe(delivery_id)
        self._settled.pop(delivery_id, None)

    async def release(self) -> int:
        """Drop what waits here for sellers no longer owned (queued, or waiting for a retry), wait for their
        sends under way (each ends within ``notify_timeout_s``), then store every outcome recorded so far:
        the next owner reads the pending rows after this returns (the intake's revocation waits for it).
        How many deliveries were dropped."""
        dropped = 0
        for q in self.queues.values():
            mine = [d for d in q if self.owns(d.seller_id)]
            for d in q:
                if not self.owns(d.seller_id):
                    self._let_go(d.delivery_id)
                    dropped += 1
            if len(mine) != len(q):
                q.clear()
                q.extend(mine)
        for delivery_id, (handle, d) in list(self._timers.items()):
            if not self.owns(d.seller_id):
                handle.cancel()
                del self._timers[delivery_id]
                self._let_go(delivery_id)
                dropped += 1
        # A queue's task with nothing under way finds its queue empty and ends by itself (an email's, once
        # its rate limit lets it look again).
        sending = [
            task
            for channel_id, task in self._tasks.items()
            if channel_id in self._sending and not self.owns(self._task_seller.get(channel_id, ""))
        ]
        if sending:
            await asyncio.wait(sending, timeout=self.settings.notify_timeout_s + 5)
        await self.outcomes.flush()
        return dropped

    def enqueue(self, d: Delivery) -> None:
        self.queues.setdefault(d.channel_id, deque()).append(d)
        if d.channel_id not in self._tasks:
            self._task_seller[d.channel_id] = d.seller_id
            self._tasks[d.channel_id] = self.loop.create_task(self._drain(d.channel_id))

    async def _drain(self, channel_id: str) -> None:
        try:
            q = self.queues[channel_id]
            while q:
                ch = self.channels.get(channel_id)
                # A channel whose stored target held a card number (api/notify/channels.py, ``usable``): each
                # delivery is recorded failed for good, saying why, and nothing is sent.
                blocked = ch.blocked if ch is not None else ""
                email = ch is not None and ch.kind == "email" and not blocked
                if email:
                    await self._email_turn(ch.seller_id)  # rate limit: what arrives meanwhile joins the digest
                    if not q:  # released meanwhile (its seller's partition was revoked)
                        break
                seller = ch.seller_id if ch is not None and not blocked else None
                if seller is not None:
                    # The seller's share of the send slots, before anything is popped: what waits for it stays
                    # queued (dropped by ``release`` if the seller goes to another notifier meanwhile).
                    await self._seller_sends.acquire(seller)
                try:
                    if not q:  # released meanwhile
                        break
                    batch = [q.popleft() for _ in range(min(len(q), DIGEST_MAX if email or blocked else 1))]
                    self._sending.add(channel_id)
                    try:
                        error = (
                            "the channel was removed"
                            if ch is None
                            else blocked
                            if blocked
                            else await self._email(ch, batch)
                            if email
                            else await self._post(ch, batch[0])
                        )
                    except Exception as exc:  # noqa: BLE001 - a bug must not strand the delivery: it is retried
                        log.exception("notifier: sending to channel %s failed unexpectedly", channel_id)
                        error = f"internal error while sending: {type(exc).__name__}"
                finally:
                    if seller is not None:
                        self._seller_sends.release(seller)
                await self._settle(batch, ch, error, final=bool(blocked))
                self._sending.discard(channel_id)
        finally:
            self._sending.discard(channel_id)
            self._tasks.pop(channel_id, None)
            self._task_seller.pop(channel_id, None)
            if not self.queues.get(channel_id):
                self.queues.pop(channel_id, None)

    # --- one attempt ---------------------------------------------------------------------------
    async def _settle(self, batch: list[Delivery], ch, error: str | None, final: bool = False) -> None:
        """Record the attempt's outcome for each delivery; schedule a retry or keep it failed (``final``: failed
        for good at once, as a retry would fail the same way)."""
        s = self.settings
        now_ms = int(time.time() * 1000)
        done = []
        for d in batch:
            attempt = d.attempts + 1
            if error is None:
                done.append(d.but(status="delivered", attempts=attempt, last_error="", next_ms=now_ms))
                continue
            delay = webhook.retry_delay(attempt, s.notify_backoff_s, s.notify_backoff_max_s)
            if ch is None or final or webhook.give_up(d.created_ms, now_ms, delay, s.notify_retry_for_s):
                done.append(d.but(status="failed", attempts=attempt, last_error=error, next_ms=now_ms))
                log.warning(
                    "delivery failed for good",
                    extra={"seller_id": d.seller_id, "delivery_id": d.delivery_id, "attempts": attempt, "error": error},
                )
            else:
                done.append(
                    d.but(status="pending", attempts=attempt, last_error=error, next_ms=now_ms + int(delay * 1000))
                )
        for new, version in zip(done, self.outcomes.add(done), strict=True):
            self._settled[new.delivery_id] = version
            self._unowe(new.delivery_id)
            if new.status == "pending":
                self.schedule(new, retry=True)
        if len(self._settled) > self._settled_prune_at:
            self._forget_settled()

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
        return await self.loop.run_in_executor(self._smtp, smtp.send, s, msg)

    async def _check_host(self, seller_id: str, url: str) -> None:
        """``check_resolves_public`` in the DNS pool, at most DNS_PER_SELLER of the seller's at once (a slot
        is held until its lookup ends, even past the timeout), waiting for a slot and the lookup together for
        at most ``notify_timeout_s``: a TargetError fails the attempt, retried like any other. Before, the wait
        for the seller's slot had no bound (its other webhooks' lookups hanging, each delivery waited behind
        them all)."""
        timeout = self.settings.notify_timeout_s
        host = urlsplit(url).hostname
        got = False
        try:
            async with asyncio.timeout(timeout):
                await self._dns_seller.acquire(seller_id)
                got = True
                lookup = self.loop.run_in_executor(self._dns, check_resolves_public, url, self.settings.dev_mode)
                lookup.add_done_callback(lambda f: self._dns_done(seller_id, f))
                await asyncio.shield(lookup)
        except TimeoutError:
            if not got:
                raise TargetError(
                    f"the host {host!r} was not looked up within {timeout:g} s "
                    f"(this seller's other webhooks' lookups took every slot it has, {DNS_PER_SELLER})"
                ) from None
            raise TargetError(f"the host {host!r} did not resolve within {timeout:g} s") from None

    def _dns_done(self, seller_id: str, lookup: asyncio.Future) -> None:
        """A lookup ended: its slot freed, its outcome read (one that ended after the timeout is not logged
        as never retrieved)."""
        self._dns_seller.release(seller_id)
        if not lookup.cancelled():
            lookup.exception()

    async def _post(self, ch, d: Delivery) -> str | None:
        """None when the endpoint answered 2xx, else what went wrong (shown to the seller)."""
        secret = unseal(ch, self.settings.key_encryption_key.get_secret_value())
        if secret is None:
            return "the signing secret cannot be opened (was the key-encryption key changed?): add the webhook again"
        try:
            if host_is_address(ch.target):
                check_resolves_public(ch.target, self.settings.dev_mode)
            else:
                await self._check_host(ch.seller_id, ch.target)
        except TargetError as exc:
            return str(exc)
        slow = ch.channel_id in self._slow
        await (self._slow_slots.acquire() if slow else self._slots.acquire())
        moved = False

        def move() -> None:  # still under way after the hold: the main slot goes back, the slow lane counts it
            nonlocal moved
            if self._moved >= s.notify_concurrency:  # as many moved already: it keeps its slot (in flight <= 2x)
                return
            moved = True
            self._moved += 1
            self._slots.release()
            self._slow_slots.take()

        s = self.settings
        hold = None if slow else self.loop.call_later(min(s.notify_main_hold_s, s.notify_timeout_s / 2), move)
        try:
            started = time.time()
            if d.attempts == 0 and d.owed_ms:
                timing.observe("queued", started - d.owed_ms / 1000)
            try:
                async with self._http.post(
                    ch.target,
                    data=d.body,
                    headers=webhook.headers(
                        secret, int(time.time()), d.body, d.alert_id, d.delivery_id, d.attempts + 1
                    ),
                    allow_redirects=False,
                    **egress.proxy_for(ch.target),
                ) as r:
                    status = r.status
                    said = b"" if 200 <= status < 300 else await r.content.read(200)
            except TimeoutError:
                return f"no answer within {self.settings.notify_timeout_s:g} s"
            except aiohttp.ClientError as exc:
                return f"could not reach the endpoint: {type(exc).__name__}: {str(exc)[:200]}"
            finally:
                took = time.time() - started
                timing.observe("post", took)
                if took > self.settings.notify_timeout_s / 2:  # hanging (or close to it): the slow lane next time
                    self._slow.add(ch.channel_id)
                elif slow:
                    self._slow.discard(ch.channel_id)
        finally:
            if hold is not None:
                hold.cancel()
            (self._slow_slots if slow or moved else self._slots).release()
            self._moved -= moved
        if 200 <= status < 300:
            if d.attempts == 0 and d.at_ms:
                timing.observe("total", time.time() - d.at_ms / 1000)
            return None
        hint = " (redirects are not followed)" if 300 <= status < 400 else ""
        return f"the endpoint answered HTTP {status}{hint}: {said.decode(errors='replace')}"

    async def close(self) -> None:
        for h, _d in self._timers.values():
            h.cancel()
        for t in list(self._tasks.values()):
            t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self.outcomes.close()
        await self._http.close()
        self._dns.shutdown(wait=False)
        self._smtp.shutdown(wait=False)
