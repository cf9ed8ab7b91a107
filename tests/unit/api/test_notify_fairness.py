"""One seller's hanging webhooks or slow host names hold up no other seller's deliveries, and its own
deliveries still end within an attempt's timeout (api/notify/dispatch.py; docs/notifications.md,
Delivery). Real sockets: endpoints that accept the connection and never answer, and one that answers 204."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import msgspec
import pytest

from api.notify import dispatch
from api.notify.channels import new_channel
from clickhouse import notify_deliveries
from clickhouse.notify_deliveries import Delivery
from livemetrics.settings import Settings

KEK = Settings().key_encryption_key.get_secret_value()


class _Hanging:
    """A real TCP server that accepts every connection and never answers (until closed)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.accepted = threading.Semaphore(0)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.release()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


class _Answering:
    """A real TCP server that answers 204 and says when a request came."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.got.set()


def _delivery(ch, n: int = 0) -> Delivery:
    now_ms = int(time.time() * 1000)  # created now: retried for notify_retry_for_s
    return Delivery(
        ch.seller_id, f"dl_{ch.channel_id}_{n}", f"al-{n}", "payment_failed", ch.channel_id, ch.target, b"{}", now_ms
    )


def test_sellers_whose_endpoints_hang_leave_send_slots_for_a_third_seller(monkeypatch):
    """Two sellers with 10 webhooks each that accept the connection and never answer, 20 send slots in all:
    each channel's POST held a slot for the whole timeout, so the two held all 20 and a third seller's
    delivery waited for the timeout. Now a seller holds at most notify_seller_concurrency (4) slots, its
    other channels' deliveries wait queued, and the third seller's POST goes out at once."""
    recorded: list[Delivery] = []
    monkeypatch.setattr(notify_deliveries, "record", lambda _s, rows, _at: recorded.extend(rows))
    hanging, fine = _Hanging(), _Answering()
    per = 4  # each seller's share of the send slots
    settings = Settings(dev_mode=True, notify_concurrency=20, notify_timeout_s=8, notify_seller_concurrency=per)

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            for seller in ("hang-a", "hang-b"):
                for i in range(10):
                    ch, _ = new_channel(seller, "webhook", f"http://127.0.0.1:{hanging.port}/{seller}/{i}", KEK)
                    channels[ch.channel_id] = ch
                    d.schedule(_delivery(ch))
            held = 0
            while held < 2 * per:  # the two sellers' connections made: their slots are held
                assert await asyncio.to_thread(hanging.accepted.acquire, True, 5)
                held += 1
            ch, _ = new_channel("shop", "webhook", f"http://127.0.0.1:{fine.port}/hook", KEK)
            channels[ch.channel_id] = ch
            started = time.monotonic()
            d.schedule(_delivery(ch))
            delivered = await asyncio.to_thread(fine.got.wait, 5)
            took = time.monotonic() - started
            # no more of the hostile sellers' POSTs went out than their shares; the rest wait queued
            more = await asyncio.to_thread(hanging.accepted.acquire, True, 0.2)  # any connection past the shares
            queued = d.backlog()["deliveries_queued"]
        finally:
            await d.close()
        return delivered, took, more, queued

    try:
        delivered, took, more, queued = asyncio.run(scenario())
    finally:
        hanging.close()
        fine.sock.close()
    assert delivered and took < 2, took  # old code: the slot came only after the 8-s timeout
    assert not more
    assert queued == 20 - 2 * per  # nothing dropped: waiting in their channels' queues


@pytest.fixture
def slow_dns(monkeypatch):
    """Host names starting "slow-" whose lookups do not answer until the test ends, and the deliveries'
    recorded outcomes: (the event that ends the lookups, the recorded rows)."""
    real = dispatch.check_resolves_public
    release = threading.Event()
    recorded: list[Delivery] = []
    monkeypatch.setattr(notify_deliveries, "record", lambda _s, rows, _at: recorded.extend(rows))

    def check(url, dev_mode):
        if "slow-" in url:
            release.wait(30)  # a DNS server that does not answer (until the test ends)
        return real(url, dev_mode)

    monkeypatch.setattr(dispatch, "check_resolves_public", check)
    yield release, recorded
    release.set()


def test_a_sellers_delivery_waiting_for_its_dns_slots_fails_within_the_timeout(slow_dns):
    """A seller's lookups hold its DNS_PER_SELLER (2) slots while its DNS server does not answer: its third
    webhook's attempt waited for a slot without limit; now the wait and the lookup together end after
    notify_timeout_s with a failed attempt (a retry scheduled, its error saying why)."""
    release, recorded = slow_dns
    settings = Settings(dev_mode=True, notify_timeout_s=1)

    async def scenario():
        d = dispatch.Dispatcher(settings, channels=None)  # type: ignore[arg-type]
        chs = [new_channel("slow", "webhook", f"http://slow-{i}.example/hook", KEK)[0] for i in range(3)]
        try:
            tasks = [asyncio.create_task(d._post(ch, _delivery(ch))) for ch in chs]
            done, _ = await asyncio.wait(tasks, timeout=5)
            errors = [t.result() for t in done]
        finally:
            release.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            deadline = time.monotonic() + 5
            while len(d._dns_seller) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # polls for the released lookups' callbacks (threads signal the loop)
            held = len(d._dns_seller)
            await d.close()
        return errors, held

    try:
        errors, held = asyncio.run(scenario())
    finally:
        release.set()
    assert len(errors) == 3, errors  # old code: the third still waiting for a slot after 5 s
    assert sum("did not resolve within 1 s" in (e or "") for e in errors) == dispatch.DNS_PER_SELLER
    assert sum("was not looked up within 1 s" in (e or "") for e in errors) == 1
    assert held == 0  # every slot given back once the lookups ended


def test_a_failed_dns_wait_is_retried_like_any_failed_attempt(slow_dns):
    """Through the queue: the attempt that found no DNS slot is recorded pending with its error and a retry."""
    release, recorded = slow_dns
    settings = Settings(dev_mode=True, notify_timeout_s=1)

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            for i in range(3):
                ch, _ = new_channel("slow", "webhook", f"http://slow-{i}.example/hook", KEK)
                channels[ch.channel_id] = ch
                d.schedule(_delivery(ch))
            deadline = time.monotonic() + 5
            while len({r.delivery_id for r in recorded}) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # polls the recorded outcomes (written by the outcome log's task)
                await d.outcomes.flush()
            owed = d.backlog()["deliveries_owed"]
        finally:
            release.set()
            await d.close()
        return owed

    try:
        owed = asyncio.run(scenario())
    finally:
        release.set()
    assert len(recorded) == 3, recorded
    assert all(r.status == "pending" and r.attempts == 1 and r.next_ms > 0 for r in recorded)
    assert sum("was not looked up within 1 s" in r.last_error for r in recorded) == 1
    assert owed == 3  # each waits for its retry


def test_healthy_sellers_do_not_wait_behind_endpoints_that_hung_last_time(monkeypatch):
    """25 sellers with 4 webhooks each that accept the connection and never answer, 100 send slots (the
    defaults: notify_concurrency 100, notify_seller_concurrency 4): the seller shares alone let them hold all
    100 for the timeout, attempt after attempt, and a healthy seller's POST waited. Now a webhook whose last
    attempt hung sends through the slow lane (notify_slow_lane, 10 slots): after the first timeouts, the 100
    hang again only 10 at a time, the rest wait queued, and the healthy seller's POST goes out at once."""
    recorded: list[Delivery] = []
    monkeypatch.setattr(notify_deliveries, "record", lambda _s, rows, _at: recorded.extend(rows))
    hanging, fine = _Hanging(), _Answering()
    timeout = 3.0
    settings = Settings(dev_mode=True, notify_timeout_s=timeout)
    sellers, per, lane = 25, settings.notify_seller_concurrency, settings.notify_slow_lane
    assert sellers * per >= settings.notify_concurrency  # enough to hold every main slot

    def firsts() -> list[Delivery]:
        """The hanging webhooks' first attempts recorded so far."""
        return [r for r in recorded if r.seller_id.startswith("hang-") and r.attempts == 1]

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            for s in range(sellers):
                for i in range(per):
                    ch, _ = new_channel(f"hang-{s}", "webhook", f"http://127.0.0.1:{hanging.port}/{s}/{i}", KEK)
                    channels[ch.channel_id] = ch
                    d.schedule(_delivery(ch, 0))
                    d.schedule(_delivery(ch, 1))  # queued behind: sent as soon as the first attempt ends
            first = sellers * per
            for _ in range(first + lane):  # every first attempt connected, and then at least the slow lane's
                assert await asyncio.to_thread(hanging.accepted.acquire, True, timeout + 5)
            deadline = time.monotonic() + 5
            while len(firsts()) < first and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # polls the recorded outcomes (written by the outcome log's task)
                await d.outcomes.flush()
            settled = len(firsts())
            # every first attempt timed out and was settled: its channel's next delivery is being sent
            ch, _ = new_channel("shop", "webhook", f"http://127.0.0.1:{fine.port}/hook", KEK)
            channels[ch.channel_id] = ch
            started = time.monotonic()
            d.schedule(_delivery(ch))
            delivered = await asyncio.to_thread(fine.got.wait, timeout + 5)
            took = time.monotonic() - started
            more = await asyncio.to_thread(hanging.accepted.acquire, True, 0.2)  # any past the slow lane's
            owed = d.backlog()["deliveries_owed"]
        finally:
            await d.close()
        return settled, delivered, took, more, owed

    try:
        settled, delivered, took, more, owed = asyncio.run(scenario())
    finally:
        hanging.close()
        fine.sock.close()
    assert settled == sellers * per
    assert all(r.status == "pending" and r.last_error == f"no answer within {timeout:g} s" for r in firsts())
    assert delivered and took < timeout / 2, took  # old code: all 100 slots held again, ~3 s
    assert not more  # the second attempts hang only the slow lane's 10 at a time
    assert owed == 2 * sellers * per  # nothing dropped: one waits for its retry, one sent or queued per channel


def test_a_webhook_that_answers_again_returns_to_the_main_lane():
    """A webhook whose first attempt hangs is in the slow lane for its next attempt; once that one is answered
    (in time) it sends through the main slots again (the same channel, its endpoint now answering)."""
    hanging, fine = _Hanging(), _Answering()
    settings = Settings(dev_mode=True, notify_timeout_s=1)

    async def scenario():
        ch, _ = new_channel("shop", "webhook", f"http://127.0.0.1:{hanging.port}/hook", KEK)
        d = dispatch.Dispatcher(settings, channels={ch.channel_id: ch})  # type: ignore[arg-type]
        try:
            first = await d._post(ch, _delivery(ch))
            slow_after_hang = ch.channel_id in d._slow
            ch = msgspec.structs.replace(ch, target=f"http://127.0.0.1:{fine.port}/hook")
            second = await d._post(ch, _delivery(ch, 1))
            slow_after_answer = ch.channel_id in d._slow
        finally:
            await d.close()
        return first, slow_after_hang, second, slow_after_answer

    try:
        first, slow_after_hang, second, slow_after_answer = asyncio.run(scenario())
    finally:
        hanging.close()
        fine.sock.close()
    assert first == "no answer within 1 s" and slow_after_hang
    assert second is None and not slow_after_answer


@pytest.mark.parametrize("sellers", [25, 40])
def test_first_attempts_at_hanging_webhooks_leave_the_main_slots_after_the_hold(monkeypatch, sellers):
    """25 sellers add 4 webhooks each that accept the connection and never answer (the defaults: 100 main
    slots, 4 per seller): their first attempts, not yet known slow, took all 100 main slots for the whole
    timeout, and a healthy seller's POST waited the timeout (again whenever a seller adds new webhooks, or its
    endpoints answer in time now and then). Now an attempt not ended within notify_main_hold_s leaves its main
    slot and ends counted in the slow lane: the healthy seller's POST goes out after the hold, and the slow
    lane starts no new attempt while the moved ones fill it. With 40 such sellers, 100 attempts move and the
    next 60 keep their main slots past the hold: 160 connections, over the connection pool's 110 (main slots
    plus slow lane), where the healthy seller's POST waited for a connection until the timeout; the pool now
    has room for the moved ones too."""
    recorded: list[Delivery] = []
    monkeypatch.setattr(notify_deliveries, "record", lambda _s, rows, _at: recorded.extend(rows))
    hanging, fine = _Hanging(), _Answering()
    timeout, hold = 4.0, 0.5
    settings = Settings(dev_mode=True, notify_timeout_s=timeout, notify_main_hold_s=hold)
    per = settings.notify_seller_concurrency
    assert sellers * per >= settings.notify_concurrency  # enough to hold every main slot
    moved = min(sellers * per, settings.notify_concurrency)

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            for s in range(sellers):
                for i in range(per):
                    ch, _ = new_channel(f"hang-{s}", "webhook", f"http://127.0.0.1:{hanging.port}/{s}/{i}", KEK)
                    channels[ch.channel_id] = ch
                    d.schedule(_delivery(ch))
            began = time.monotonic()
            for _ in range(sellers * per):  # every first attempt connected: every main slot is held
                assert await asyncio.to_thread(hanging.accepted.acquire, True, 5)
            connected = time.monotonic() - began  # past 100: after the moves, and only with room in the pool
            ch, _ = new_channel("shop", "webhook", f"http://127.0.0.1:{fine.port}/hook", KEK)
            channels[ch.channel_id] = ch
            started = time.monotonic()
            d.schedule(_delivery(ch))
            delivered = await asyncio.to_thread(fine.got.wait, timeout + 5)
            took = time.monotonic() - started
            deadline = time.monotonic() + 2
            while d._slow_slots.busy < moved and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # polls the moves (each on its own attempt's hold timer)
            busy = d._slow_slots.busy  # the moved attempts, still hanging, counted in the slow lane
        finally:
            await d.close()
        return delivered, took, busy, connected

    try:
        delivered, took, busy, connected = asyncio.run(scenario())
    finally:
        hanging.close()
        fine.sock.close()
    assert delivered and took < hold + 1.0, took  # old code: ~4 s, the timeout
    assert busy == moved
    assert connected < timeout / 2, connected  # a pool of 110 (main + slow lane): the 40 sellers' at ~4 s


def test_the_slow_lane_counts_moved_attempts_and_starts_nothing_new_until_under_its_size():
    async def scenario():
        lane = dispatch._Lane(2)
        await lane.acquire()
        lane.take()
        lane.take()  # two attempts moved in from the main slots: 3 busy, over the size
        waiting = [asyncio.create_task(lane.acquire()) for _ in range(3)]
        await asyncio.sleep(0)  # lets the three start waiting
        lane.release()  # 2 busy: still no room
        await asyncio.sleep(0)
        started_at_2 = sum(t.done() for t in waiting)
        waiting[0].cancel()  # a waiter given up (its seller's partition revoked) takes no room
        lane.release()  # 1 busy: room for one
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        started_at_1 = sum(t.done() and not t.cancelled() for t in waiting)
        lane.release()
        await asyncio.gather(*waiting[1:])
        return started_at_2, started_at_1, lane.busy

    assert asyncio.run(scenario()) == (0, 1, 2)


def test_at_most_notify_concurrency_attempts_leave_their_main_slots(monkeypatch):
    """Moves are bounded: with 2 main slots, 2 attempts move after the hold, the next 2 keep their slots past
    it (in flight: at most twice the main slots plus the slow lane), and a fifth seller's POST waits."""
    monkeypatch.setattr(notify_deliveries, "record", lambda _s, rows, _at: None)
    hanging = _Hanging()
    settings = Settings(dev_mode=True, notify_timeout_s=3, notify_main_hold_s=0.2, notify_concurrency=2)

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            for s in range(5):
                ch, _ = new_channel(f"hang-{s}", "webhook", f"http://127.0.0.1:{hanging.port}/{s}", KEK)
                channels[ch.channel_id] = ch
                d.schedule(_delivery(ch))
            for _ in range(4):  # two on the main slots, moved after the hold; two more on the freed slots
                assert await asyncio.to_thread(hanging.accepted.acquire, True, 5)
            fifth = await asyncio.to_thread(hanging.accepted.acquire, True, 1.0)  # past the next holds
            return d._moved, fifth
        finally:
            await d.close()

    try:
        moved, fifth = asyncio.run(scenario())
    finally:
        hanging.close()
    assert moved == 2 and not fifth


def test_emails_to_a_hanging_smtp_server_take_none_of_the_apis_default_threads(monkeypatch):
    """The notifier sent each email with asyncio.to_thread: the loop's default executor (min(32, cores + 4)
    threads, 6 on 2 cores), which the API's report, payment-error and delivery routes also use for every
    ClickHouse read. 40 sellers' alert emails to an SMTP server that accepts and never greets (or is merely
    slow, or an alert storm of many sellers) held every thread for the timeout, and every seller's reports
    waited. Now emails go through a pool of their own (SMTP_THREADS), and the default executor answers at once."""
    monkeypatch.setattr(notify_deliveries, "record", lambda _s, rows, _at: None)
    hanging = _Hanging()
    settings = Settings(
        dev_mode=True, notify_timeout_s=3, smtp_host="127.0.0.1", smtp_port=hanging.port, smtp_starttls=False
    )

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            for s in range(40):  # more than any default executor's threads
                ch, _ = new_channel(f"mail-{s}", "email", f"ops@mail-{s}.example", KEK)
                channels[ch.channel_id] = ch
                d.schedule(_delivery(ch))
            for _ in range(min(6, dispatch.SMTP_THREADS)):  # emails under way: their connections are open
                assert await asyncio.to_thread(hanging.accepted.acquire, True, 5)
            started = time.monotonic()
            await asyncio.to_thread(time.monotonic)  # what a report's ClickHouse read waits for
            return time.monotonic() - started
        finally:
            await d.close()

    try:
        waited = asyncio.run(scenario())
    finally:
        hanging.close()
    assert waited < 1, waited  # old code: ~3 s, until the first SMTP timeouts freed a thread


def test_a_seller_owes_at_most_its_backlog_over_all_its_channels(monkeypatch):
    """A browser key is public, so its payment failures can come faster than a seller's endpoints take them;
    each channel owed at most notify_channel_backlog (10,000) deliveries, so a seller with 10 channels held
    100,000 in the API's memory (each with its alert's body: ~1.2 KB a typical one, ~120 MB per seller, and the
    process serves every seller). Now a seller owes at most notify_seller_backlog over all its channels; past
    it a new delivery is recorded failed at once, saying why, for the seller to redeliver."""
    recorded: list[Delivery] = []
    monkeypatch.setattr(notify_deliveries, "record", lambda _s, rows, _at: recorded.extend(rows))
    hanging = _Hanging()
    settings = Settings(dev_mode=True, notify_timeout_s=5, notify_channel_backlog=5, notify_seller_backlog=8)

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            for i in range(3):
                ch, _ = new_channel("flooded", "webhook", f"http://127.0.0.1:{hanging.port}/{i}", KEK)
                channels[ch.channel_id] = ch
                for n in range(5):
                    d.schedule(_delivery(ch, n))
            other, _ = new_channel("other", "webhook", f"http://127.0.0.1:{hanging.port}/other", KEK)
            channels[other.channel_id] = other
            d.schedule(_delivery(other))
            owed = d.backlog()["deliveries_owed"]
            await d.outcomes.flush()
        finally:
            await d.close()
        return owed

    try:
        owed = asyncio.run(scenario())
    finally:
        hanging.close()
    assert owed == 8 + 1, owed  # old code: 15 + 1
    refused = [r for r in recorded if r.status == "failed"]
    assert len(refused) == 7 and all("this seller already owed 8 deliveries" in r.last_error for r in refused), [
        r.last_error for r in refused
    ]
    assert {r.seller_id for r in refused} == {"flooded"}


def _big_delivery(ch, n: int, size: int) -> Delivery:
    d = _delivery(ch, n)
    return d.but(body=b'{"pad": "' + b"x" * (size - 11) + b'"}')


@pytest.fixture
def recorded(monkeypatch) -> list[Delivery]:
    """Every outcome the dispatcher records (``notify_deliveries.record``, ClickHouse's, replaced)."""
    rows: list[Delivery] = []
    monkeypatch.setattr(notify_deliveries, "record", lambda _s, got, _at: rows.extend(got))
    return rows


@pytest.fixture
def hanging() -> Iterator[_Hanging]:
    server = _Hanging()
    yield server
    server.close()


def _four_mib_in_all(notify_timeout_s: float) -> Settings:
    """A notifier that owes at most 4 MiB of alerts in all and 1 MiB of one seller's."""
    mib = 1 << 20
    return Settings(
        dev_mode=True, notify_timeout_s=notify_timeout_s, notify_seller_backlog_bytes=mib, notify_backlog_bytes=4 * mib
    )


def _hook(channels: dict, hanging: _Hanging, seller: str, path: str):
    """A webhook channel of ``seller`` to the hanging server, in ``channels`` (a dict serves the book's .get)."""
    ch, _ = new_channel(seller, "webhook", f"http://127.0.0.1:{hanging.port}/{path}", KEK)
    channels[ch.channel_id] = ch
    return ch


def test_a_sellers_owed_deliveries_hold_at_most_its_bytes_of_alerts(recorded, hanging):
    """A browser key's payment failure makes an alert of up to ~33 KB (payment items, details and message):
    a seller's notify_seller_backlog (20,000) of them held ~630 MB of the notifier, so 1-2 flooded sellers
    filled a GB (measured: 20,000 deliveries with 32 KiB bodies and their timers, +612 MiB). Now a seller's
    owed deliveries hold at most notify_seller_backlog_bytes of bodies; past it a new one is recorded failed at
    once, saying why, and another seller's still go through (seen failing before the change: 40 owed)."""
    mib = 1 << 20
    settings = Settings(dev_mode=True, notify_timeout_s=5, notify_seller_backlog_bytes=mib)

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            ch, other = _hook(channels, hanging, "flooded", "hook"), _hook(channels, hanging, "other", "other")
            for n in range(40):  # 40 x 32 KiB: 1.25 MiB
                d.schedule(_big_delivery(ch, n, 32 * 1024))
            for n in range(5):
                d.schedule(_big_delivery(other, n, 32 * 1024))
            backlog = d.backlog()
            await d.outcomes.flush()
        finally:
            await d.close()
        return backlog

    backlog = asyncio.run(scenario())
    assert backlog["deliveries_owed"] == 32 + 5, backlog  # 32 x 32 KiB fit the flooded seller's MiB
    assert backlog["deliveries_owed_bytes"] == 37 * 32 * 1024
    refused = [r for r in recorded if r.status == "failed"]
    assert len(refused) == 8 and {r.seller_id for r in refused} == {"flooded"}, [r.seller_id for r in refused]
    assert all("LIVEMETRICS_NOTIFY_SELLER_BACKLOG_BYTES 1,048,576" in r.last_error for r in refused), refused[0]


def test_many_flooded_sellers_stop_at_the_notifiers_bytes_and_a_quiet_seller_still_goes_through(recorded, hanging):
    """Past notify_backlog_bytes in all, a seller holding at least its share (the bound over the sellers owed)
    is refused: ten flooded sellers stop at the bound instead of ten times their own, and a seller with one
    delivery owed still gets its next (seen failing before the change: no bytes bound)."""
    mib, body = 1 << 20, 32 * 1024
    settings = _four_mib_in_all(notify_timeout_s=5)

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        try:
            quiet = _hook(channels, hanging, "quiet", "quiet")
            d.schedule(_big_delivery(quiet, 0, body))
            for s in range(10):
                ch = _hook(channels, hanging, f"flood-{s}", str(s))
                for n in range(40):
                    d.schedule(_big_delivery(ch, n, body))
            d.schedule(_big_delivery(quiet, 1, body))
            backlog = d.backlog()
            await d.outcomes.flush()
        finally:
            await d.close()
        return backlog

    backlog = asyncio.run(scenario())
    # the bound, full (room made for sellers under their shares): 10 x 1.25 MiB before any bound, 1.8 x it after
    assert backlog["deliveries_owed_bytes"] == 4 * mib, backlog
    refused = [r for r in recorded if r.status == "failed"]
    assert "quiet" not in {r.seller_id for r in refused}  # its second delivery is owed too
    assert any("LIVEMETRICS_NOTIFY_BACKLOG_BYTES 4,194,304" in r.last_error for r in refused), refused[-1].last_error


def test_a_retry_of_a_delivery_owed_is_never_refused_by_the_notifiers_bytes(recorded, hanging):
    """A delivery whose attempt failed is owed again for its retry (``_settle``): the bound on all sellers'
    bytes refuses new deliveries only, never one the notifier had taken."""
    mib, body = 1 << 20, 32 * 1024
    settings = Settings(dev_mode=True, notify_timeout_s=5, notify_seller_backlog_bytes=mib, notify_backlog_bytes=mib)

    async def scenario():
        ch, _ = new_channel("flooded", "webhook", f"http://127.0.0.1:{hanging.port}/hook", KEK)
        d = dispatch.Dispatcher(settings, channels={ch.channel_id: ch})  # type: ignore[arg-type]
        try:
            for n in range(33):
                d.schedule(_big_delivery(ch, n, body).but(next_ms=int(time.time() * 1000) + 60_000))
            owed_before = d.backlog()["deliveries_owed"]
            d._unowe(f"dl_{ch.channel_id}_0")  # as ``_settle`` does before it schedules the retry
            d.schedule(_big_delivery(ch, 0, body), retry=True)
            d.schedule(_big_delivery(ch, 99, body))
            backlog = d.backlog()
            await d.outcomes.flush()
        finally:
            await d.close()
        return owed_before, backlog

    owed_before, backlog = asyncio.run(scenario())
    assert owed_before == 32 and backlog["deliveries_owed"] == 32, (owed_before, backlog)
    assert [r.delivery_id.rsplit("_", 1)[1] for r in recorded if r.status == "failed"] == ["32", "99"]


def test_flooded_sellers_arriving_one_after_another_keep_the_total_within_the_bound_and_each_its_share(
    recorded, hanging
):
    """Sellers under their share went through on top of notify_backlog_bytes, and as flooded sellers kept coming
    (each share smaller) the total crept past it: 1.8 times it after ten, and past twice it every seller's new
    deliveries were refused. Now a seller within its share goes through in room made by dropping the newest
    waiting deliveries of the sellers most over theirs (recorded failed, saying why); the total never passes the
    bound, every flooded seller ends with its share (within one alert), the quiet seller loses nothing, and no
    delivery under way is touched."""
    mib, body = 1 << 20, 32 * 1024
    settings = _four_mib_in_all(notify_timeout_s=30)

    async def scenario():
        channels = {}
        d = dispatch.Dispatcher(settings, channels=channels)  # type: ignore[arg-type]  # a dict serves .get
        totals, flooded = [], []
        try:
            quiet = _hook(channels, hanging, "quiet", "quiet")
            d.schedule(_big_delivery(quiet, 0, body))
            for s in range(10):
                ch = _hook(channels, hanging, f"flood-{s}", str(s))
                flooded.append(ch)
                for n in range(40):
                    d.schedule(_big_delivery(ch, n, body))
                    totals.append(d.backlog()["deliveries_owed_bytes"])
                deadline = time.monotonic() + 10
                while ch.channel_id not in d._sending and time.monotonic() < deadline:  # its first POST under way
                    await asyncio.sleep(0.01)
            d.schedule(_big_delivery(quiet, 1, body))
            totals.append(d.backlog()["deliveries_owed_bytes"])
            held = dict(d._bytes_by_seller)
            await d.outcomes.flush()
        finally:
            await d.close()
        return totals, held, flooded

    totals, held, flooded = asyncio.run(scenario())
    assert max(totals) <= 4 * mib, max(totals) / mib  # before: 1.8 x the bound
    # the quiet seller holds what it owes, the ten flooded ones the rest, each at least its share (the bound over
    # the 11 sellers) within one alert: the last to come stops there, the earlier ones keep what the quiet one
    # leaves of its share
    floods = [held[f"flood-{s}"] for s in range(10)]
    assert sum(floods) == 4 * mib - 2 * body and min(floods) >= 4 * mib // 11 - body, floods
    assert held["quiet"] == 2 * body
    failed = [r for r in recorded if r.status == "failed"]
    assert "quiet" not in {r.seller_id for r in failed}
    dropped = [r for r in failed if "to make room for a seller under its share" in r.last_error]
    assert dropped and all("LIVEMETRICS_NOTIFY_BACKLOG_BYTES 4,194,304" in r.last_error for r in dropped)
    under_way = {f"dl_{ch.channel_id}_0" for ch in flooded}  # each channel's first: popped, being sent
    assert not under_way & {r.delivery_id for r in failed}
