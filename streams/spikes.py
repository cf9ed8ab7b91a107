"""Error-spike detection (pure): a seller's payment failure rate over the short window far above its
trailing hour. Thresholds are settings (``spike_*``)."""

from __future__ import annotations

from typing import Any

from streams.rates import BUCKET_MS, BUCKETS


class SpikeRule:
    def __init__(
        self,
        window_s: int = 300,
        ratio: float = 3.0,
        min_failures: int = 5,
        min_rate: float = 0.2,
        cooldown_s: int = 900,
    ):
        self.window_buckets = max(1, min(BUCKETS - 1, window_s // (BUCKET_MS // 1000)))
        self.ratio, self.min_failures, self.min_rate = ratio, min_failures, min_rate
        self.cooldown_ms = cooldown_s * 1000

    @classmethod
    def from_settings(cls, s) -> SpikeRule:
        return cls(s.spike_window_s, s.spike_ratio, s.spike_min_failures, s.spike_min_rate, s.spike_cooldown_s)


def _rate(failed: int, succeeded: int) -> float:
    return failed / (failed + succeeded) if failed + succeeded else 0.0


def check(seller: str, rates: dict[str, Any], now: int, rule: SpikeRule, last_alert_at: int | None) -> dict | None:
    """An ``error_spike`` alert if the short window's failure rate (failed / finished payments) is at least
    ``ratio`` times the rest of the hour's, with enough failures, and the cool-down has passed."""
    if last_alert_at is not None and now - last_alert_at < rule.cooldown_ms:
        return None
    f, s = rates["series"]["payments_failed"], rates["series"]["payments_succeeded"]
    k = rule.window_buckets
    f_now, s_now, f_before, s_before = sum(f[-k:]), sum(s[-k:]), sum(f[:-k]), sum(s[:-k])
    r_now, r_before = _rate(f_now, s_now), _rate(f_before, s_before)
    if f_now < rule.min_failures or r_now < rule.min_rate or r_now < rule.ratio * r_before:
        return None
    slot = now // rule.cooldown_ms  # same id for re-sends within one cool-down (e.g. after a restart)
    return {
        "kind": "error_spike",
        "alert_id": f"error_spike:{seller}:{slot}",
        "seller_id": seller,
        "at": now,
        "window_s": k * BUCKET_MS // 1000,
        "baseline_s": (BUCKETS - k) * BUCKET_MS // 1000,
        "failures": f_now,
        "succeeded": s_now,
        "failure_rate": round(r_now, 4),
        "baseline_failures": f_before,
        "baseline_succeeded": s_before,
        "baseline_failure_rate": round(r_before, 4),
        # Counted from every payment event, browser-reported ones included: only as trustworthy as those.
        "source": "browser",
    }
