"""Once a minute (``traffic_watch_interval_s``), a ``traffic_dropped`` alert on ``payment-alerts`` for each
seller this worker owns whose page views stopped after normal traffic (``streams/traffic_drop.py``). The seller's snapshots cannot
trigger it: a seller with no events has no changed numbers, so this looks at all owned sellers."""

from __future__ import annotations

import msgspec

from streams import minute_rates, produce_guard, rates, traffic_drop
from streams.agents.gauges import CAPS, owned_sellers, tables_recovering
from streams.app import app, settings
from streams.clock import now_ms
from streams.topics import payment_alerts

DROP_RULE = traffic_drop.DropRule.from_settings(settings)
_json = msgspec.json.Encoder()
_dropped_at: dict[str, int] = {}  # last traffic-dropped alert per seller (cool-down)


def _last_hour(seller: str, now: int) -> dict:
    return rates.series(minute_rates.last_hour(seller, now), now, CAPS.payment_method)


@app.timer(interval=settings.traffic_watch_interval_s)  # once a minute (the windows are minutes)
async def watch_traffic() -> None:
    """Alert each owned seller whose traffic dropped (not while tables recover: their numbers are partial)."""
    if tables_recovering():
        return
    now = now_ms()
    for alert in traffic_drop.sweep(owned_sellers(), lambda s: _last_hour(s, now), now, DROP_RULE, _dropped_at):
        await produce_guard.send(
            payment_alerts, alert["seller_id"].encode(), _json.encode(alert), "traffic-dropped alert"
        )
