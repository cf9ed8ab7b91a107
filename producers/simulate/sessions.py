"""One storefront session as a timeline of events (pure: a seeded ``random.Random`` in, events out).

A person lands (home, a category from search, or an offer from a campaign), browses with think times,
sends a heartbeat every ``HEARTBEAT_S`` while reading a page, may add to the cart, start a checkout,
pay with a method that fails at its own rate (and retry or give up), or leave at any step: what is
left behind in the cart, checkout or payment is the abandonment the seller sees. Bots crawl pages
quickly with a bot user agent and never buy.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from typing import Any

from producers.simulate.catalog import (
    BOT_AGENTS,
    BOT_SHARE,
    BROWSER_AGENTS,
    FIRST_NAMES,
    LAST_NAMES,
    PAYMENT_METHODS,
    Offer,
    PaymentMethod,
    SellerProfile,
)

HEARTBEAT_S = 15
MAX_PAGES = 25
# Where a person goes next from each kind of page: (next, weight); "leave" ends the session.
TRANSITIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "home": (("category", 55), ("offer", 15), ("other", 5), ("leave", 25)),
    "category": (("offer", 45), ("product", 15), ("category", 12), ("leave", 28)),
    "offer": (("cart", 28), ("product", 10), ("category", 17), ("leave", 45)),
    "product": (("cart", 22), ("offer", 18), ("leave", 60)),
    "other": (("home", 40), ("leave", 60)),
    "cart": (("checkout", 55), ("category", 15), ("leave", 30)),  # 30 %: cart abandonment
}
CHECKOUT_TO_PAYMENT = 0.72  # the rest abandon in checkout
RETRY_AFTER_FAILURE = 0.55  # the rest abandon in payment


@dataclass(frozen=True)
class Planned:
    at_ms: int  # when to send it (and its `ts`)
    user_agent: str
    body: dict[str, Any]


def pick(rng: random.Random, weighted) -> Any:
    items = list(weighted)
    return rng.choices([i[0] for i in items], weights=[i[-1] for i in items])[0]


def think_ms(rng: random.Random, median_s: float = 14.0, cap_s: float = 150.0) -> int:
    """Time spent reading a page: log-normal, a few seconds to a couple of minutes."""
    return int(min(cap_s, max(1.5, rng.lognormvariate(math.log(median_s), 0.8))) * 1000)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class _Timeline:
    def __init__(self, rng: random.Random, seller: SellerProfile, start_ms: int, ua: str):
        self.rng, self.seller, self.now, self.ua = rng, seller, start_ms, ua
        self.session_id = "sim-" + uuid.UUID(int=rng.getrandbits(128)).hex[:20]
        self.events: list[Planned] = []

    def emit(self, type_: str, **fields: Any) -> None:
        body = {"event_id": _uuid(self.rng), "type": type_, "session_id": self.session_id, "ts": self.now, **fields}
        self.events.append(Planned(self.now, self.ua, body))

    def page(self, ptype: str, category: str | None = None, offer: Offer | None = None) -> None:
        page: dict[str, Any] = {"type": ptype}
        if ptype == "category":
            page["category"], page["path"] = category, f"/c/{category}"
        elif ptype == "offer":
            page["offer_id"], page["path"] = offer.offer_id, f"/o/{offer.offer_id}"
        else:
            page["path"] = {"home": "/", "cart": "/cart", "checkout": "/checkout", "payment": "/checkout/pay"}.get(
                ptype, f"/{ptype}"
            )
        self.emit("page_view", page=page)

    def dwell(self, ms: int, heartbeats: bool = True) -> None:
        """Read the page for ``ms``; the tracker sends a heartbeat every HEARTBEAT_S meanwhile."""
        end = self.now + ms
        while heartbeats and self.now + HEARTBEAT_S * 1000 < end:
            self.now += HEARTBEAT_S * 1000
            self.emit("heartbeat")
        self.now = end


def _category(rng: random.Random, seller: SellerProfile) -> str:
    return pick(rng, seller.categories)


def _offer(rng: random.Random, seller: SellerProfile, category: str | None = None) -> Offer:
    offers = [o for o in seller.offers if category is None or o.category == category] or list(seller.offers)
    if category is None:  # landing from a campaign link: promoted offers dominate
        return pick(rng, [(o, o.campaign_boost**2) for o in offers])
    return pick(rng, [(o, o.campaign_boost) for o in offers])


def customer(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    n = rng.randrange(100, 999)
    return {
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{n}@example.com",
        "phone": f"+44 20 7946 0{rng.randrange(100, 999)}",
    }


def plan_bot(rng: random.Random, seller: SellerProfile, start_ms: int) -> list[Planned]:
    t = _Timeline(rng, seller, start_ms, pick(rng, BOT_AGENTS))
    for _ in range(rng.randint(3, 15)):
        if rng.random() < 0.5:
            t.page("category", category=_category(rng, seller))
        else:
            t.page("offer", offer=_offer(rng, seller))
        t.dwell(rng.randint(300, 3000), heartbeats=False)  # crawlers run no JavaScript timers
    return t.events


def plan_session(rng: random.Random, seller: SellerProfile, start_ms: int, bots: bool = True) -> list[Planned]:
    """The events of one session, in time order, starting at ``start_ms``."""
    if bots and rng.random() < BOT_SHARE:
        return plan_bot(rng, seller, start_ms)
    t = _Timeline(rng, seller, start_ms, pick(rng, BROWSER_AGENTS))
    cart: list[Offer] = []
    here = pick(rng, (("home", 60), ("category", 25), ("offer", 15)))
    category: str | None = None
    offer: Offer | None = None
    for _ in range(MAX_PAGES):
        if here == "leave":
            return t.events
        if here == "category":
            category = _category(rng, seller)
            t.page("category", category=category)
        elif here == "offer":
            offer = _offer(rng, seller, category)
            t.page("offer", offer=offer)
        elif here == "cart":
            cart.append(offer or _offer(rng, seller, category))
            t.page("cart")
        elif here == "checkout":
            _checkout_and_pay(t, cart)
            return t.events
        else:
            t.page(here)
        t.dwell(think_ms(rng))
        here = pick(rng, TRANSITIONS[here])
    return t.events


def _checkout_and_pay(t: _Timeline, cart: list[Offer]) -> None:
    rng, seller = t.rng, t.seller
    items: dict[str, dict[str, Any]] = {}
    for o in cart:
        it = items.setdefault(
            o.offer_id,
            {"sku": o.offer_id.upper(), "name": f"{o.category} {o.offer_id}", "qty": 0, "unit_price": o.price},
        )
        it["qty"] += rng.choice((1, 1, 1, 2))
    total = round(sum(i["qty"] * i["unit_price"] for i in items.values()), 2)
    who = customer(rng)
    order_id = "ord-" + uuid.UUID(int=rng.getrandbits(128)).hex[:12]
    t.page("checkout")
    t.emit(
        "checkout_started",
        checkout={"items": list(items.values()), "total": total, "currency": seller.currency},
        customer=who,
    )
    t.dwell(think_ms(rng, median_s=35))
    if rng.random() > CHECKOUT_TO_PAYMENT:
        return  # abandoned in checkout
    method = pick(rng, [(m, m.share) for m in PAYMENT_METHODS])
    for attempt in range(1, 4):
        pay = {"method": method.name, "amount": total, "currency": seller.currency, "order_id": order_id}
        t.emit("payment_started", payment=pay, customer=who)
        t.now += rng.randint(1500, 9000)  # the payment provider answers
        if rng.random() >= method.failure_rate:
            t.emit("payment_succeeded", payment=pay, customer=who)
            return
        t.emit("payment_failed", payment=failure(rng, method, pay, attempt), customer=who)
        if rng.random() > RETRY_AFTER_FAILURE:
            t.dwell(think_ms(rng, median_s=10))
            return  # abandoned in payment
        t.dwell(think_ms(rng, median_s=12))
        if rng.random() < 0.4:  # some try another way to pay
            method = pick(rng, [(m, m.share) for m in PAYMENT_METHODS if m is not method])


def failure(
    rng: random.Random, method: PaymentMethod, pay: dict[str, Any], attempt: int, error_code: str | None = None
) -> dict[str, Any]:
    code, message = error_code, "Payment provider unavailable"
    if code is None:
        code, message, _ = rng.choices(method.errors, weights=[e[2] for e in method.errors])[0]
    return {
        **pay,
        "error_code": code,
        "error_message": message,
        "details": {
            "psp": f"{method.name}-gateway",
            "attempt": attempt,
            "decline_ref": uuid.UUID(int=rng.getrandbits(128)).hex[:10],
        },
    }


def plan_failure_burst(
    rng: random.Random,
    seller: SellerProfile,
    start_ms: int,
    n: int,
    error_code: str = "psp_unavailable",
    spread_ms: int = 5000,
) -> list[Planned]:
    """``n`` customers whose card payments fail with the same code within a few seconds (an outage at the
    payment provider): what the error-spike alert exists for."""
    card = next(m for m in PAYMENT_METHODS if m.name == "card")
    out: list[Planned] = []
    for _ in range(n):
        t = _Timeline(rng, seller, start_ms + rng.randrange(0, max(1, spread_ms)), pick(rng, BROWSER_AGENTS))
        o = _offer(rng, seller)
        who = customer(rng)
        pay = {
            "method": "card",
            "amount": o.price,
            "currency": seller.currency,
            "order_id": "ord-" + uuid.UUID(int=rng.getrandbits(128)).hex[:12],
        }
        t.emit(
            "checkout_started",
            customer=who,
            checkout={
                "items": [{"sku": o.offer_id.upper(), "name": o.offer_id, "qty": 1, "unit_price": o.price}],
                "total": o.price,
                "currency": seller.currency,
            },
        )
        t.now += rng.randint(200, 800)
        t.emit("payment_started", payment=pay, customer=who)
        t.now += rng.randint(200, 800)
        t.emit("payment_failed", payment=failure(rng, card, pay, 1, error_code), customer=who)
        out += t.events
    return sorted(out, key=lambda p: p.at_ms)
