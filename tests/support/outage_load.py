"""Storefront load for outage tests: threads post batches of session journeys to the gateway, retry a
503 or a network error with the *same* body (as the tracker and the SDK do), keep every event answered
202, and recount a seller's live numbers from them (docs/live-semantics.md, windows longer than the test)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import httpx

from tests.support import factories as f

# A journey: page views, then maybe checkout and payment; a session ends purchased or not at all.
PAGES = [
    ("home", None, None),
    ("category", "lamps", None),
    ("category", "rugs", None),
    ("offer", None, "o-1"),
    ("offer", None, "o-2"),
    ("product", None, None),
    ("cart", None, None),
]


class Session:
    def __init__(self, seller: str, sid: str, rng: random.Random):
        self.seller, self.sid, self.rng, self.step, self.done = seller, sid, rng, 0, False

    def next_event(self) -> dict:
        """The session's next event (page views, checkout, payment, a result); ``done`` after a success."""
        self.step += 1
        roll = self.rng.random()
        if self.step < 3 or roll < 0.5:
            page, cat, offer = self.rng.choice(PAGES)
            return f.page_view(page, category=cat, offer_id=offer, session_id=self.sid)
        if roll < 0.7:
            return f.checkout_started(session_id=self.sid)
        if roll < 0.85:
            return f.payment(session_id=self.sid)
        if roll < 0.93:
            return f.payment_failed(session_id=self.sid)
        self.done = True
        return f.payment_succeeded(session_id=self.sid)


class Storefront(threading.Thread):
    """Posts ``batch`` events (one per session, so a session's events are acknowledged in order) every
    ``pause`` seconds until stopped; a refused batch is posted again until 202 or the deadline.
    ``hold()`` / ``go()`` pause and resume it between batches (sessions go on across the pauses)."""

    def __init__(
        self,
        url: str,
        key: str,
        seller: str,
        sessions: int,
        seed: int,
        batch: int = 20,
        pause: float = 0.02,
        deadline_s: float = 600,
        held: bool = False,
        origin: str = f.SHOP_ORIGIN,
    ):
        super().__init__(daemon=True, name=f"storefront-{seller}-{seed}")
        rng = random.Random(seed)
        self.url, self.key, self.seller, self.batch, self.pause = url, key, seller, batch, pause
        self.headers = {**f.browser_headers(key), "Origin": origin}  # a page of the key's allowed origin
        self.sessions = [Session(seller, f"{seller}-{seed}-{i:05d}", rng) for i in range(sessions)]
        self.acked: list[dict] = []  # every event answered 202, in the order acknowledged
        self.statuses: Counter = Counter()  # HTTP status (or "network") of every answer
        self.gave_up = 0
        self.deadline = time.monotonic() + deadline_s
        self._halt = threading.Event()
        self._held = threading.Event()
        if held:  # starts paused: ``go()`` starts the posting
            self._held.set()
        self._idle = threading.Event()  # held, and not in the middle of a batch
        self._cursor = 0
        self.lock = threading.Lock()

    def stop(self) -> None:
        self._halt.set()

    def hold(self, timeout: float = 60) -> bool:
        """Stop after the batch in progress (acknowledged or given up); True once idle."""
        self._idle.clear()
        self._held.set()
        return self._idle.wait(timeout)

    def go(self) -> None:
        self._held.clear()

    def _next_batch(self) -> list[dict]:
        live = [s for s in self.sessions if not s.done]
        if not live:
            return []
        n = min(self.batch, len(live))
        start = self._cursor % len(live)
        self._cursor += n
        return [s.next_event() for s in (live + live)[start : start + n]]

    def _post_until_acked(self, client: httpx.Client, events: list[dict]) -> None:
        body = {"events": events}
        while time.monotonic() < self.deadline:
            try:
                r = client.post(self.url, json=body, headers=self.headers)
                status = r.status_code
            except httpx.HTTPError:
                status = "network"
            with self.lock:
                self.statuses[status] += 1
                if status == 202:
                    self.acked.extend(events)
                    return
            if status not in (503, "network"):
                raise AssertionError(f"gateway answered {status}: {r.text[:300]}")
            # Retry-After is a ceiling for a browser; a test retries sooner, still bounded by the deadline.
            time.sleep(0.2)
        self.gave_up += 1

    def run(self) -> None:
        try:
            self._post_all()
        finally:
            self._idle.set()  # nothing more will be posted

    def _post_all(self) -> None:
        with httpx.Client(timeout=15) as client:
            while not self._halt.is_set() and time.monotonic() < self.deadline:
                if self._held.is_set():
                    self._idle.set()
                    self._halt.wait(0.02)  # polling interval while held
                    continue
                self._idle.clear()
                events = self._next_batch()
                if not events:
                    return
                self._post_until_acked(client, events)
                self._halt.wait(self.pause)

    def acked_events(self) -> list[dict]:
        with self.lock:
            return list(self.acked)


def recount(events: list[dict]) -> dict:
    """The live view of the sessions in ``events`` (one seller, all within the windows)."""
    latest: dict[str, dict] = {}
    for ev in events:
        latest[ev["session_id"]] = ev
    live = {"home": 0, "category": {}, "offer": {}, "product": 0, "cart": 0, "other": 0, "checkout": 0, "payment": 0}
    for ev in latest.values():
        t = ev["type"]
        if t == "payment_succeeded":
            continue
        if t == "checkout_started":
            live["checkout"] += 1
        elif t.startswith("payment_"):
            live["payment"] += 1
        else:
            page = ev["page"]
            if page["type"] == "category":
                live["category"][page["category"]] = live["category"].get(page["category"], 0) + 1
            elif page["type"] == "offer":
                live["offer"][page["offer_id"]] = live["offer"].get(page["offer_id"], 0) + 1
            else:
                live[page["type"]] += 1
    return {
        "live": live,
        "active_sessions": len(latest),
        "purchased_30m": len({e["session_id"] for e in events if e["type"] == "payment_succeeded"}),
        "payment_failures_30m": len({e["event_id"] for e in events if e["type"] == "payment_failed"}),
    }


def view(snap: dict) -> dict:
    """The parts of a snapshot ``recount`` gives."""
    live = {
        k: v
        for k, v in snap["live"].items()
        if k in ("home", "category", "offer", "product", "cart", "other", "checkout", "payment")
    }
    return {
        "live": live,
        "active_sessions": snap["active_sessions"],
        "purchased_30m": snap["purchased_30m"],
        "payment_failures_30m": snap["payment_failures_30m"],
    }
