"""``bench queries``' state ``recent_arriving``: the reports at ``recent`` while the seller's events keep arriving
(issue #19), the figure a running system sees between two folds. The other states insert nothing while they
measure, so the rows a report adds past its seller's fill of the shared live part
(clickhouse/session_live_cache.py) stay what the state left: none. Here a thread inserts the seller's steady
traffic (``queries.steady``: RATE events a second, sessions of ``queries.EVENTS_PER_SESSION`` events a minute
apart) every TICK_S through the sink's own insert path (``events_json.insert_events``: JSON lines as the sink
takes them from Kafka, the sink's insert settings and deduplication token, counted in ``inserts_in_flight``),
so the rows past the fill grow by RATE a second until a report replaces the fill (past
``session_live_cache.REFILL_ROWS``), and the inserts' CPU is on the machine as the sink's would be."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np

from livemetrics.contract import Checkout, Customer, Event, Item, Page, Payment, encode
from livemetrics.settings import Settings

RATE = 2_000  # events/s: issue #19's seller
TICK_S = 0.5  # an insert every half second (the sink's batches at this rate: ~1,000 events each)
_PAGES = ("home", "category", "offer", "product", "cart", "other")


def encoded(rng: np.random.Generator, sess: np.ndarray, ts: np.ndarray, seller: str) -> list[bytes]:
    """The events (session numbers, epoch ms) as the gateway hands them to Kafka, with ``queries.events``'
    mix of types, pages, categories and offers."""
    from operations.bench.queries import PAGE_P, RECENT_SESSIONS, TYPE_P, TYPES

    n = len(sess)
    types = rng.choice(len(TYPES), n, p=TYPE_P)
    pages = rng.choice(len(_PAGES), n, p=PAGE_P)
    items = rng.integers(1, 301, n)
    out = []
    for i in range(n):
        t, ms = TYPES[types[i]], int(ts[i])
        common = {
            "event_id": str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i)),
            "seller_id": seller,
            "session_id": str(int(sess[i]) + 10_000_000),
            "ts": ms,
            "received_at": ms,
            "browser": "Chrome",
        }
        if t == "page_view":
            page = _PAGES[pages[i]]
            category = f"cat-{1 + items[i] % 50}" if page == "category" else None
            offer = f"offer-{items[i]}" if page == "offer" else None
            e = Event(type=t, page=Page(type=page, category=category, offer_id=offer), **common)
        elif t == "checkout_started":
            e = Event(
                type=t,
                checkout=Checkout(
                    items=[Item(sku="A-1", name="Lamp", qty=1, unit_price=20.0)], total=20.0, currency="EUR"
                ),
                customer=Customer(email="someone@example.com"),
                **common,
            )
        else:
            failed = t == "payment_failed"
            e = Event(
                type=t,
                payment=Payment(
                    method="card",
                    amount=20.0,
                    currency="EUR",
                    order_id=f"o-{int(sess[i]) - RECENT_SESSIONS}",
                    error_code="err_1" if failed else None,
                    error_message="Error number 1" if failed else None,
                ),
                customer=Customer(email="someone@example.com"),
                **common,
            )
        out.append(encode(e))
    return out


class Arrivals:
    """While entered, a thread inserts the seller's traffic of every TICK_S since the ``with`` began
    (``queries.steady`` of ``origin_ms``), as Kafka messages of the topic ``bench`` from ``offset`` on.
    ``events_per_s`` afterwards: the rate it kept. An insert's failure is raised by ``__exit__``."""

    def __init__(self, settings: Settings, seller: str, origin_ms: int, offset: int):
        self.settings, self.seller, self.origin_ms, self.offset = settings, seller, origin_ms, offset
        self.inserted, self.events_per_s = 0, 0.0
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-arrivals", daemon=True)

    def __enter__(self) -> Arrivals:
        self._began = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.events_per_s = self.inserted / max(time.monotonic() - self._began, 1e-9)
        if self._error is not None:
            raise RuntimeError("inserting the arriving events failed") from self._error

    def _run(self) -> None:
        from clickhouse import events_json
        from clickhouse.client import EVENTS_INSERT_SETTINGS, get_client
        from clickhouse.inserts_in_flight import IN_FLIGHT
        from operations.bench.queries import steady

        rng = np.random.default_rng(23)
        client, db = get_client(self.settings), self.settings.clickhouse_database
        last_ms = int(time.time() * 1000)
        try:
            while not self._stop.wait(TICK_S):
                now_ms = int(time.time() * 1000)
                sess, ts = steady(last_ms, now_ms, self.origin_ms)
                last_ms = now_ms
                if not len(sess):
                    continue
                values = encoded(rng, sess, ts, self.seller)
                first = self.offset + self.inserted
                heads = [b'[%d,"bench",0,%d,' % (i, first + i) for i in range(len(values))]
                settings = {**EVENTS_INSERT_SETTINGS, "insert_deduplication_token": f"bench-arriving-{first}"}
                with IN_FLIGHT.inserting():  # as the sink's insert (clickhouse/sink_store.py)
                    events_json.insert_events(client, db, heads, values, settings, self.settings.clickhouse_embedded)
                self.inserted += len(values)
        except BaseException as e:  # noqa: BLE001 - raised by __exit__ in the measuring thread
            self._error = e
