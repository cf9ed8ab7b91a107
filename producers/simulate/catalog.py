"""What the simulated marketplace sells and how its customers behave: the parameters of the traffic
model, kept apart from the mechanics so they can be read (and tuned) in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PaymentMethod:
    name: str
    share: float  # how often customers pick it
    failure_rate: float  # per attempt
    errors: tuple[tuple[str, str, float], ...]  # (error_code, message, weight)


PAYMENT_METHODS = (
    PaymentMethod(
        "card",
        0.55,
        0.08,
        (
            ("card_declined", "The card was declined", 5),
            ("insufficient_funds", "Insufficient funds", 3),
            ("expired_card", "The card has expired", 1),
            ("3ds_failed", "3-D Secure authentication failed", 2),
        ),
    ),
    PaymentMethod(
        "paypal",
        0.25,
        0.04,
        (("paypal_cancelled", "The buyer cancelled at PayPal", 3), ("paypal_timeout", "PayPal did not answer", 1)),
    ),
    PaymentMethod("bank_transfer", 0.08, 0.02, (("iban_invalid", "The IBAN is not valid", 1),)),
    PaymentMethod(
        "wallet",
        0.12,
        0.05,
        (
            ("wallet_token_expired", "The wallet token has expired", 2),
            ("device_not_supported", "Device not supported", 1),
        ),
    ),
)

BROWSER_AGENTS = (  # (user agent, weight)
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        30,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        25,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        20,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        15,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 10),
)
BOT_AGENTS = (
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 5),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 2),
)
BOT_SHARE = 0.08  # of sessions

# Share of the day's traffic per local hour (0-23): quiet at night, a lunch bump, an evening peak.
_HOURLY = (
    2,
    1.2,
    0.8,
    0.6,
    0.6,
    0.9,
    1.8,
    3.2,
    4.2,
    4.6,
    4.9,
    5.3,
    5.8,
    5.4,
    5.0,
    4.9,
    5.1,
    5.6,
    6.4,
    7.4,
    8.0,
    7.2,
    5.2,
    3.4,
)
_HOURLY_MEAN = sum(_HOURLY) / 24


def daily_rhythm(hour: float) -> float:
    """Traffic at a (fractional) local hour relative to the day's mean (1.0 = average), interpolated."""
    h = hour % 24
    i = int(math.floor(h))
    frac = h - i
    v = _HOURLY[i] * (1 - frac) + _HOURLY[(i + 1) % 24] * frac
    return v / _HOURLY_MEAN


@dataclass(frozen=True)
class Offer:
    offer_id: str
    category: str
    price: float
    campaign_boost: float = 1.0  # > 1 while an offer campaign promotes it


@dataclass(frozen=True)
class SellerProfile:
    seller_id: str
    currency: str
    categories: tuple[tuple[str, float], ...]  # (slug, popularity)
    offers: tuple[Offer, ...]
    traffic_share: float  # of all simulated sessions
    utc_offset_h: int = 1
    products: dict = field(default_factory=dict)


def _offers(
    prefix: str, cats: tuple[tuple[str, float], ...], prices: tuple[float, ...], campaigns: set[str]
) -> tuple[Offer, ...]:
    out = []
    for ci, (slug, _) in enumerate(cats):
        for k in range(3):
            oid = f"{prefix}-{slug[:4]}-{k + 1}"
            out.append(Offer(oid, slug, prices[(ci + k) % len(prices)], 4.0 if oid in campaigns else 1.0))
    return tuple(out)


_HOME_CATS = (("lamps", 30), ("sofas", 12), ("rugs", 18), ("kitchen", 25), ("garden", 10), ("bedding", 15))
_OUTDOOR_CATS = (("tents", 20), ("boots", 35), ("jackets", 30), ("backpacks", 25), ("stoves", 6))
_BOOK_CATS = (("fiction", 40), ("crime", 25), ("cooking", 15), ("travel", 10), ("children", 20), ("poetry", 3))

SELLERS = (
    SellerProfile(
        "acme-home",
        "EUR",
        _HOME_CATS,
        _offers("ah", _HOME_CATS, (19.5, 49.0, 129.0, 349.0, 899.0), {"ah-lamp-1", "ah-kitc-2"}),
        0.45,
    ),
    SellerProfile(
        "nordic-outdoor",
        "SEK",
        _OUTDOOR_CATS,
        _offers("no", _OUTDOOR_CATS, (299.0, 899.0, 1499.0, 2499.0), {"no-boot-1"}),
        0.35,
    ),
    SellerProfile(
        "tiny-books",
        "GBP",
        _BOOK_CATS,
        _offers("tb", _BOOK_CATS, (6.99, 9.99, 14.5, 24.0), {"tb-fict-1"}),
        0.20,
        utc_offset_h=0,
    ),
)
SELLER_IDS = tuple(s.seller_id for s in SELLERS)

FIRST_NAMES = (
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Tim",
    "Barbara",
    "Ken",
    "Frances",
    "Dennis",
    "Hedy",
    "Edsger",
)
LAST_NAMES = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Hamilton",
    "Liskov",
    "Thompson",
    "Allen",
    "Ritchie",
    "Lamarr",
    "Dijkstra",
)
