"""Gauges agent: per seller, the latest sums row reported by each source partition; their total is the
seller's live numbers and per-minute rates, published as a snapshot on ``live-metrics`` at most every
snapshot interval, plus error-spike alerts on ``payment-alerts``."""

from __future__ import annotations

import msgspec

from streams import rates, spikes
from streams.agents.sessions import WINDOWS
from streams.app import app, settings
from streams.clock import now_ms
from streams.snapshot import build_snapshot
from streams.tables import gauges
from streams.topics import live_deltas, live_metrics, payment_alerts

SPIKE_RULE = spikes.SpikeRule.from_settings(settings)

_json = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(dict)
_changed: set[str] = set()
_spiked_at: dict[str, int] = {}  # last error-spike alert per seller (cool-down)
_recovering = {"now": False, "announced": False}


def apply_report(report: dict) -> bool:
    """Keep the report if it is newer than what we have from its partition; True if kept."""
    seller = report["seller"]
    key = seller.encode()
    raw = gauges.get(key)
    parts = _dec.decode(raw) if raw else {}
    p = str(report["p"])
    prev = parts.get(p)
    if prev is not None and prev["seq"] >= report["seq"]:
        return False  # a redelivered or older report: changes nothing
    parts[p] = {"seq": report["seq"], "v": report["v"], "r": report.get("r", {})}
    gauges[key] = _json.encode(parts)
    _changed.add(seller)
    return True


def totals_for(seller: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """The seller's gauges and per-minute buckets: the sum over its partitions' latest rows."""
    raw = gauges.get(seller.encode())
    totals: dict[str, int] = {}
    buckets: dict[str, dict[str, int]] = {}
    if raw:
        for part in _dec.decode(raw).values():
            for k, v in part["v"].items():
                totals[k] = totals.get(k, 0) + v
            rates.merge(buckets, part.get("r", {}))
    return {k: v for k, v in totals.items() if v}, buckets


def snapshot_for(seller: str, now: int, recovering: bool = False) -> tuple[dict, dict]:
    totals, buckets = totals_for(seller)
    per_minute = rates.series(buckets, now)
    return build_snapshot(seller, totals, WINDOWS, recovering=recovering, as_of_ms=now, rates=per_minute), per_minute


@app.agent(live_deltas)
async def keep_gauges(stream):
    async for event in stream.events():
        apply_report(_dec.decode(event.value))


def _is_recovering() -> bool:
    return bool(getattr(app, "in_recovery", False))  # set by Faust while tables replay their changelogs


@app.timer(interval=settings.snapshot_interval_ms / 1000)
async def publish_snapshots() -> None:
    """A snapshot for every seller whose numbers changed since the last one; while tables recover after
    a restart or rebalance, one snapshot per known seller saying ``recovering: true``."""
    now = now_ms()
    recovering = _is_recovering()
    if recovering != _recovering["now"]:
        _recovering["now"] = recovering
        _changed.update(k.decode() for k in list(gauges.keys()))
    if not _changed:
        return
    sellers = list(_changed)
    _changed.clear()
    for seller in sellers:
        snap, per_minute = snapshot_for(seller, now, recovering)
        await live_metrics.send(key=seller.encode(), value=_json.encode(snap))
        if recovering:
            continue
        alert = spikes.check(seller, per_minute, now, SPIKE_RULE, _spiked_at.get(seller))
        if alert is not None:
            _spiked_at[seller] = now
            await payment_alerts.send(key=seller.encode(), value=_json.encode(alert))
