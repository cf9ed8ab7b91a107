"""Traffic-dropped detection (pure): a seller that normally has traffic has had none for a while
(tracking broken, shop down). Same shape and cool-down as error spikes (streams/spikes.py): the input is
the last hour's per-minute series (streams/rates.py), oldest first, the current minute last.

The worker checks every seller it owns once a minute (``streams/agents/traffic_watch.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from streams.rates import BUCKET_MS, BUCKETS


class DropRule:
    def __init__(self, silent_s: int = 900, min_per_minute: float = 2.0, cooldown_s: int = 3600):
        # The silent stretch is whole minutes before the current (incomplete) one; the rest of the hour
        # before it is the baseline, which must be "normally has traffic": at least min_per_minute.
        self.silent_buckets = max(1, min(BUCKETS - 2, silent_s // (BUCKET_MS // 1000)))
        self.min_per_minute = min_per_minute
        self.cooldown_ms = cooldown_s * 1000

    @classmethod
    def from_settings(cls, s: Any) -> DropRule:
        return cls(s.traffic_drop_silent_s, s.traffic_drop_min_per_minute, s.traffic_drop_cooldown_s)


def check(seller: str, rates: dict[str, Any], now: int, rule: DropRule, last_alert_at: int | None) -> dict | None:
    """A ``traffic_dropped`` alert when the seller's page views were zero for the last ``silent_s`` (the
    current minute not counted: it has only begun) after a baseline of at least ``min_per_minute``, and
    the cool-down since the last one has passed."""
    if last_alert_at is not None and now - last_alert_at < rule.cooldown_ms:
        return None
    views = rates["series"]["page_views"][:-1]  # whole minutes only
    k = rule.silent_buckets
    silent, before = views[-k:], views[:-k]
    if not before or any(silent):
        return None
    baseline = sum(before) / len(before)
    if baseline < rule.min_per_minute:
        return None  # a seller with little traffic: silence is normal
    slot = now // rule.cooldown_ms  # same id for re-sends within one cool-down (after a restart)
    return {
        "kind": "traffic_dropped",
        "alert_id": f"traffic_dropped:{seller}:{slot}",
        "seller_id": seller,
        "at": now,
        "silent_s": k * BUCKET_MS // 1000,
        "baseline_per_minute": round(baseline, 2),
        "baseline_s": len(before) * BUCKET_MS // 1000,
        "source": "browser",
    }


def sweep(
    sellers: Iterable[str],
    rates_of: Callable[[str], dict[str, Any]],
    now: int,
    rule: DropRule,
    last_alert_at: dict[str, int],
) -> list[dict]:
    """The traffic-dropped alerts due now among ``sellers`` (``rates_of`` gives a seller's last hour);
    ``last_alert_at`` is updated for each one, so the cool-down holds from here on."""
    out = []
    for seller in sellers:
        alert = check(seller, rates_of(seller), now, rule, last_alert_at.get(seller))
        if alert is not None:
            last_alert_at[seller] = now
            out.append(alert)
    return out
