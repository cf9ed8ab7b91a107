"""Gauges agent: per seller, the latest sums reported by each source partition; their total is the
seller's live numbers, published as a snapshot on ``live-metrics`` at most every snapshot interval."""

from __future__ import annotations

import msgspec

from streams.agents.sessions import WINDOWS
from streams.app import app, settings
from streams.clock import now_ms
from streams.snapshot import build_snapshot
from streams.tables import gauges
from streams.topics import live_deltas, live_metrics

_json = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(dict)
_changed: set[str] = set()


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
    parts[p] = {"seq": report["seq"], "v": report["v"]}
    gauges[key] = _json.encode(parts)
    _changed.add(seller)
    return True


def totals_for(seller: str) -> dict[str, int]:
    raw = gauges.get(seller.encode())
    totals: dict[str, int] = {}
    if raw:
        for part in _dec.decode(raw).values():
            for k, v in part["v"].items():
                totals[k] = totals.get(k, 0) + v
    return {k: v for k, v in totals.items() if v}


@app.agent(live_deltas)
async def keep_gauges(stream):
    async for event in stream.events():
        apply_report(_dec.decode(event.value))


@app.timer(interval=settings.snapshot_interval_ms / 1000)
async def publish_snapshots() -> None:
    """A snapshot for every seller whose numbers changed since the last one."""
    if not _changed:
        return
    sellers = list(_changed)
    _changed.clear()
    now = now_ms()
    for seller in sellers:
        snap = build_snapshot(seller, totals_for(seller), WINDOWS, as_of_ms=now)
        await live_metrics.send(key=seller.encode(), value=_json.encode(snap))
