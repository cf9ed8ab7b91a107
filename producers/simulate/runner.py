"""The simulator's network side: sends the traffic model's events to the public gateway, exactly as
storefronts do (browser keys for live traffic, a signed server key for backfill), retrying 429/503
and network errors with the same ``event_id``s."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx

from livemetrics import keys
from producers.simulate.sellers import gateway_origin
from producers.simulate.sessions import Planned
from producers.simulate.traffic import LiveTraffic, backfill_plan

MAX_BATCH = 500
MAX_IN_FLIGHT = 16


class KeyRefused(RuntimeError):
    """The gateway refused our key (401/403): retrying cannot help."""


@dataclass
class Stats:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    retried: int = 0
    errors: dict = field(default_factory=lambda: defaultdict(int))

    def line(self) -> str:
        err = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items()))
        return f"sent {self.sent}, accepted {self.accepted}, rejected {self.rejected}, retried {self.retried}" + (
            f" ({err})" if err else ""
        )


class Sender:
    def __init__(self, http: httpx.AsyncClient, stats: Stats):
        self.http, self.stats = http, stats
        self.origin = gateway_origin(str(http.base_url))

    async def post(self, key: str, user_agent: str, events: list[dict], backfill: bool = False) -> float | None:
        """Send one batch; None when done, else the seconds to wait before sending it again."""
        body = json.dumps({"events": events}).encode()
        headers = {"User-Agent": user_agent, "Content-Type": "application/json"}
        kind, key_id, secret = keys.split_key(key) or ("", "", "")
        if kind == "sk":  # server keys sign every request; the key itself never travels
            ts = str(int(time.time()))
            headers.update(
                {
                    "X-Livemetrics-Key-Id": key_id,
                    "X-Livemetrics-Timestamp": ts,
                    "X-Livemetrics-Signature": keys.sign(secret, ts, body, backfill),
                }
            )
            if backfill:
                headers["X-Livemetrics-Backfill"] = "1"
        else:  # as the storefront's pages send it: from the demo storefront's origin (the gateway's own)
            headers["Authorization"] = f"Bearer {key}"
            headers["Origin"] = self.origin
        try:
            r = await self.http.post("/v1/events", content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.stats.errors[type(exc).__name__] += 1
            return 2.0
        if r.status_code in (401, 403):
            raise KeyRefused(f"gateway refused the key ({r.status_code}): {r.text[:200]}")
        if r.status_code in (429, 503):
            self.stats.errors[str(r.status_code)] += 1
            return float(r.headers.get("retry-after", "1") or 1)
        self.stats.sent += len(events)
        if r.status_code in (202, 422):
            data = r.json()
            self.stats.accepted += data.get("accepted", 0)
            self.stats.rejected += len(data.get("rejected", []))
            for rej in data.get("rejected", [])[:1]:
                self.stats.errors["rejected: " + rej["error"][:80]] += 1
        else:
            self.stats.errors[str(r.status_code)] += 1
        return None


def _batches(due: list[tuple[str, Planned]]) -> dict[tuple[str, str], list[Planned]]:
    """One request per (seller, user agent): the gateway parses the user agent per request, as it would
    from a real browser."""
    out: dict[tuple[str, str], list[Planned]] = defaultdict(list)
    for seller_id, e in due:
        out[(seller_id, e.user_agent)].append(e)
    return out


async def run_live(
    gateway: str,
    sellers: dict[str, dict],
    rate: float,
    duration: float | None = None,
    burst: int = 0,
    burst_at: float = 30.0,
    seed: int | None = None,
    log_every: float = 10.0,
    log=lambda s: print(s, file=sys.stderr, flush=True),
) -> Stats:
    from producers.simulate.catalog import SELLERS

    profiles = tuple(p for p in SELLERS if p.seller_id in sellers)
    traffic = LiveTraffic(rate, int(time.time() * 1000), seed=seed, profiles=profiles)
    stats = Stats()
    started = time.monotonic()
    next_log = started + log_every
    burst_done = burst <= 0
    sem = asyncio.Semaphore(MAX_IN_FLIGHT)
    failures: list[BaseException] = []
    tasks: set[asyncio.Task] = set()

    async def send(seller_id: str, ua: str, planned: list[Planned]) -> None:
        async with sem:
            try:
                wait = await sender.post(sellers[seller_id]["browser_key"], ua, [p.body for p in planned])
            except KeyRefused as exc:
                failures.append(exc)
                return
        if wait is not None:  # back into the plan, same event ids, a little later
            stats.retried += len(planned)
            traffic.push(
                seller_id, [Planned(int(time.time() * 1000 + wait * 1000), p.user_agent, p.body) for p in planned]
            )

    log(f"simulating {', '.join(sellers)} at ~{rate:g} events/s through {gateway}")
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as http:
        sender = Sender(http, stats)
        while duration is None or time.monotonic() - started < duration:
            if failures:
                raise failures[0]
            now = time.monotonic()
            if not burst_done and now - started >= burst_at:
                traffic.add_burst(int(time.time() * 1000), burst)
                log(f"burst: {burst} payment failures for {profiles[0].seller_id}")
                burst_done = True
            for (seller_id, ua), planned in _batches(traffic.due(int(time.time() * 1000))).items():
                for i in range(0, len(planned), MAX_BATCH):
                    t = asyncio.create_task(send(seller_id, ua, planned[i : i + MAX_BATCH]))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            if now >= next_log:
                log(f"{now - started:5.0f}s  {traffic.sessions} sessions, {stats.line()}")
                next_log += log_every
            await asyncio.sleep(0.1)
        if tasks:
            await asyncio.wait(tasks, timeout=20)
    log(f"done: {traffic.sessions} sessions, {stats.line()}")
    return stats


async def run_backfill(
    gateway: str,
    sellers: dict[str, dict],
    days: float,
    sessions_per_day: int,
    seed: int | None = None,
    log=lambda s: print(s, file=sys.stderr, flush=True),
) -> Stats:
    """Send ``days`` of history with past timestamps, signed with each seller's server key and marked
    backfill (stored for reports, never counted live)."""
    from tqdm import tqdm

    stats = Stats()
    end_ms = int(time.time() * 1000) - 35 * 60 * 1000  # leave the live windows to live traffic
    sem = asyncio.Semaphore(4)

    async def send(seller_id: str, ua: str, events: list[dict]) -> None:
        async with sem:
            for _ in range(10):
                wait = await sender.post(sellers[seller_id]["server_key"], ua, events, backfill=True)
                if wait is None:
                    return
                stats.retried += len(events)
                await asyncio.sleep(wait)

    log(f"backfilling {days:g} days for {', '.join(sellers)} (~{sessions_per_day} sessions/day)")
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        sender = Sender(http, stats)
        pending: dict[tuple[str, str], list[dict]] = defaultdict(list)
        tasks: list[asyncio.Task] = []
        with tqdm(total=int(days * 24), desc="backfill", unit="h", file=sys.stderr) as bar:
            hour = None
            for seller_id, e in backfill_plan(days, end_ms, sessions_per_day, seed=seed):
                if seller_id not in sellers:
                    continue
                h = e.at_ms // 3_600_000
                if hour is not None and h != hour:
                    bar.update(1)
                hour = h
                batch = pending[(seller_id, e.user_agent)]
                batch.append(e.body)
                if len(batch) >= MAX_BATCH:
                    tasks.append(
                        asyncio.create_task(send(seller_id, e.user_agent, pending.pop((seller_id, e.user_agent))))
                    )
                    if len(tasks) > 8:
                        await asyncio.gather(*tasks)
                        tasks.clear()
            tasks += [asyncio.create_task(send(s, ua, evs)) for (s, ua), evs in pending.items()]
            await asyncio.gather(*tasks)
            bar.update(bar.total - bar.n)
    log(f"backfill done: {stats.line()}")
    return stats
