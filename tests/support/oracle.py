"""Generated storefront history and the reports computed from it in plain Python (the oracle the
ClickHouse reports are checked against). Semantics as in docs/clickhouse.md: hours are UTC hours whose
start lies in [hour of `from`, `to`); session figures count the sessions that started in the range."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from clickhouse.session_cap import SESSION_MAX_ITEMS
from livemetrics.contract import Checkout, Customer, Event, Item, Page, Payment, money_text

CATEGORIES = ("lamps", "chairs", "tables", "rugs")
OFFERS = ("o-1", "o-2", "o-3")
METHODS = ("card", "paypal", "wallet")
ERRORS = (("card_declined", "Declined"), ("expired_card", "Expired"), ("timeout", "PSP timeout"))


def dst_transition_before(now: datetime, tz: str = "Europe/Berlin") -> datetime:
    """The most recent UTC midnight before which the zone's offset differed from after it."""
    z = ZoneInfo(tz)
    d = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=4)
    for _ in range(400):
        if d.astimezone(z).utcoffset() != (d - timedelta(days=1)).astimezone(z).utcoffset():
            return d
        d -= timedelta(days=1)
    raise AssertionError("no DST transition in a year")


def generate(seed: int, sellers: tuple[str, ...], start: datetime, days: int, sessions_per_seller: int) -> list[Event]:
    rnd = random.Random(seed)
    out: list[Event] = []
    span = days * 86400_000
    t0 = int(start.timestamp() * 1000)
    for seller in sellers:
        for i in range(sessions_per_seller):
            sid = f"{seller}-sess-{i:05d}"
            bot = rnd.random() < 0.05
            t = t0 + rnd.randrange(span)

            def ev(type_: str, **kw) -> None:
                nonlocal t
                out.append(
                    Event(
                        event_id=str(uuid.UUID(int=rnd.getrandbits(128))),
                        type=type_,
                        seller_id=seller,
                        session_id=sid,
                        ts=t,
                        received_at=t + 5,
                        is_bot=bot,
                        browser="Chrome",
                        **kw,
                    )
                )
                t += rnd.randrange(5_000, 900_000)  # sessions may cross hour and day boundaries

            ev("page_view", page=Page(type="home", path="/"))
            for _ in range(rnd.randrange(0, 4)):
                r = rnd.random()
                if r < 0.4:
                    ev("page_view", page=Page(type="category", category=rnd.choice(CATEGORIES)))
                elif r < 0.7:
                    ev("page_view", page=Page(type="offer", offer_id=rnd.choice(OFFERS)))
                elif r < 0.85:
                    ev("page_view", page=Page(type="product", path="/p/1"))
                else:
                    ev("heartbeat")
            if rnd.random() < 0.5:
                continue
            cust = Customer(email=f"{sid}@example.com", phone="+49 30 1234567", name="Ada")
            cur = rnd.choice(("EUR", "USD"))
            total = Decimal(f"{rnd.uniform(5, 500):.2f}")  # as the gateway decodes "123.45": exact
            ev(
                "checkout_started",
                checkout=Checkout(items=[Item(sku="s", name="n", qty=1, unit_price=total)], total=total, currency=cur),
                customer=cust,
            )
            if rnd.random() < 0.3:
                continue
            method = rnd.choice(METHODS)
            pay = dict(method=method, amount=total, currency=cur, order_id=f"ord-{sid}")
            ev("payment_started", payment=Payment(**pay), customer=cust)
            for _ in range(rnd.randrange(0, 3)):
                code, msg = rnd.choice(ERRORS)
                ev(
                    "payment_failed",
                    payment=Payment(**pay, error_code=code, error_message=msg, details={"n": 1}),
                    customer=cust,
                )
            if rnd.random() < 0.6:
                ev("payment_succeeded", payment=Payment(**pay), customer=cust)
    return out


def split(events: list[Event], seed: int, later: float) -> tuple[list[Event], list[Event]]:
    """Events in two deliveries: about ``later`` of them (any event, a session's first one included)
    arrive in the second, so sessions span both, and some start earlier than first thought."""
    rnd = random.Random(seed)
    first, second = [], []
    for e in events:
        (second if rnd.random() < later else first).append(e)
    return first, second


def late_events(seed: int, events: list[Event], sessions: int) -> list[Event]:
    """Backfilled events for ``sessions`` sessions per seller that are already stored: a category view
    two hours before the session began (its start hour moves), an offer view, and a checkout for a
    session that had none (it goes further in the funnel)."""
    rnd = random.Random(seed)
    by_session: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for e in events:
        if not e.is_bot:
            by_session[(e.seller_id, e.session_id)].append(e)
    out: list[Event] = []
    for seller in sorted({s for s, _ in by_session}):
        mine = sorted(k for k in by_session if k[0] == seller)
        for key in rnd.sample(mine, min(sessions, len(mine))):
            es = by_session[key]
            first, last = min(e.ts for e in es), max(e.ts for e in es)

            def ev(type_: str, ts: int, **kw) -> None:
                out.append(
                    Event(
                        event_id=str(uuid.UUID(int=rnd.getrandbits(128))),
                        type=type_,
                        seller_id=seller,
                        session_id=key[1],
                        ts=ts,
                        received_at=ts + 5,
                        browser="Chrome",
                        backfill=True,
                        **kw,
                    )
                )

            ev("page_view", first - 2 * 3_600_000, page=Page(type="category", category=rnd.choice(CATEGORIES)))
            ev("page_view", last + 1000, page=Page(type="offer", offer_id=rnd.choice(OFFERS)))
            if not any(e.type == "checkout_started" for e in es):
                ev(
                    "checkout_started",
                    last + 2000,
                    checkout=Checkout(
                        items=[Item(sku="s", name="n", qty=1, unit_price=Decimal("10.00"))],
                        total=Decimal("10.00"),
                        currency="EUR",
                    ),
                )
    return out


def _hour(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 3_600_000 * 3600, UTC)


def _in(h: datetime, start: datetime, end: datetime) -> bool:
    return start.replace(minute=0, second=0, microsecond=0) <= h < end


def reports(events: list[Event], seller: str, start: datetime, end: datetime, tz: str) -> dict[str, dict]:
    z = ZoneInfo(tz)
    evs = [e for e in events if e.seller_id == seller and not e.is_bot]
    in_range = [e for e in evs if _in(_hour(e.ts), start, end)]
    # hourly
    cells: dict[tuple[int, int], dict] = defaultdict(
        lambda: {"page_views": 0, "sessions": set(), "checkouts": 0, "purchases": 0}
    )
    for e in in_range:
        local = _hour(e.ts).astimezone(z)
        c = cells[(local.isoweekday(), local.hour)]
        if e.type == "page_view":
            c["page_views"] += 1
            c["sessions"].add(e.session_id)
        c["checkouts"] += e.type == "checkout_started"
        c["purchases"] += e.type == "payment_succeeded"
    hourly = [
        {
            "weekday": w,
            "hour": h,
            "page_views": c["page_views"],
            "sessions": len(c["sessions"]),
            "checkouts": c["checkouts"],
            "purchases": c["purchases"],
        }
        for (w, h), c in sorted(cells.items())
    ]
    # sessions that started in the range
    by_session: dict[str, list[Event]] = defaultdict(list)
    for e in evs:
        by_session[e.session_id].append(e)
    started = {s: es for s, es in by_session.items() if _in(_hour(min(e.ts for e in es)), start, end)}

    def furthest(es: list[Event]) -> int:
        types = {e.type for e in es}
        if "payment_succeeded" in types:
            return 4
        if types & {"payment_started", "payment_failed"}:
            return 3
        if "checkout_started" in types:
            return 2
        if any(e.page and e.page.type in ("offer", "product") for e in es if e.type == "page_view"):
            return 1
        return 0

    def popular(attr: str, page_type: str) -> list[dict]:
        views = Counter(getattr(e.page, attr) for e in in_range if e.type == "page_view" and e.page.type == page_type)
        sessions, checkout = Counter(), Counter()
        for es in started.values():
            seen = {getattr(e.page, attr) for e in es if e.type == "page_view" and e.page.type == page_type}
            for item in sorted(seen, key=str.encode)[:SESSION_MAX_ITEMS]:  # the first by name (session_cap.py)
                sessions[item] += 1
                checkout[item] += furthest(es) >= 2
        return sorted(
            (
                {
                    attr: k,
                    "views": views.get(k, 0),
                    "sessions": n,
                    "checkout_sessions": checkout[k],
                    "conversion": round(checkout[k] / n, 4),
                }
                for k, n in sessions.items()
            ),
            key=lambda r: (-r["views"], -r["sessions"], r[attr]),
        )

    f = Counter(furthest(es) for es in started.values())
    reached = [sum(n for k, n in f.items() if k >= i) for i in range(5)]
    funnel = [
        {"step": step, "sessions": reached[i], "abandoned": f.get(i, 0) if i < 4 else 0}
        for i, step in enumerate(("visit", "product", "checkout", "payment", "purchase"))
    ]
    # payments
    pm: dict[str, dict] = defaultdict(lambda: {"started": 0, "succeeded": 0, "failed": 0, "revenue": Counter()})
    trends: Counter = Counter()
    causes: Counter = Counter()
    for e in in_range:
        if not e.type.startswith("payment_"):
            continue
        m = pm[e.payment.method]
        m[e.type.removeprefix("payment_")] += 1
        if e.type == "payment_succeeded":
            m["revenue"][e.payment.currency] += e.payment.amount
        if e.type == "payment_failed":
            trends[(_hour(e.ts).astimezone(z).date().isoformat(), e.payment.error_code)] += 1
            causes[e.payment.error_code] += 1
    methods = [
        {
            "method": k,
            "started": v["started"],
            "succeeded": v["succeeded"],
            "failed": v["failed"],
            "revenue": {c: money_text(a) for c, a in v["revenue"].items()},
        }
        for k, v in pm.items()
    ]
    methods.sort(key=lambda r: (-(r["succeeded"] + r["failed"]), r["method"]))
    return {
        "hourly": {"rows": hourly},
        "categories": {"rows": popular("category", "category")},
        "offers": {"rows": popular("offer_id", "offer")},
        "funnel": {"rows": funnel},
        "payment-methods": {"rows": methods},
        "error-trends": {
            "rows": sorted(
                ({"day": d, "error_code": c, "failures": n} for (d, c), n in trends.items()),
                key=lambda r: (r["day"], -r["failures"], r["error_code"]),
            ),
            "top_causes": sorted(
                ({"error_code": c, "failures": n} for c, n in causes.items()),
                key=lambda r: (-r["failures"], r["error_code"]),
            ),
        },
    }
