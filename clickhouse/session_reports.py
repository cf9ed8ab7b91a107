"""The session reports (categories, offers, funnel): the sums folded up to the watermark
(``session_sums``, clickhouse/session_fold.py) plus how the sessions with rows inserted since change them
(docs/clickhouse.md, "Reports").

The folded part (``popular.sql`` / ``funnel.sql``) and the change since (``session_live.sql``: per item,
the sessions with rows since the watermark, new state minus old) are two queries of at most a few
hundred rows each, added here. ``session_live.sql`` does the arithmetic of ``session_deltas.sql`` (the
fold's form) for one seller and range; the oracle tests check both against the same events.
"""

from __future__ import annotations

from typing import Any

from clickhouse import query
from livemetrics.settings import Settings

POPULAR = {
    "categories": {"dim": "category", "kind": "category", "dims": "categories"},
    "offers": {"dim": "offer_id", "kind": "offer", "dims": "offers"},
}


def popular(settings: Settings, name: str, seller_id: str, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
    """Rows of the categories or offers report: items some session that started in the range viewed."""
    sub = POPULAR[name]
    folded, changes = _consistent(settings, "popular", sub, seller_id, from_ms, to_ms)
    rows = []
    for r in folded:
        n, checkout = changes.pop(r["item"], (0, 0))
        rows.append(
            {
                "item": r["item"],
                "views": r["views"],
                "sessions": r["sessions"] + n,
                "checkout_sessions": r["checkout_sessions"] + checkout,
            }
        )
    # items no folded session viewed and no page view in range counted (views come from the rollup)
    rows += [{"item": item, "views": 0, "sessions": n, "checkout_sessions": c} for item, (n, c) in changes.items()]
    rows = [r for r in rows if r["sessions"] > 0]
    rows.sort(key=lambda r: (-r["views"], -r["sessions"], r["item"]))
    return [
        {
            sub["dim"]: r["item"],
            "views": r["views"],
            "sessions": r["sessions"],
            "checkout_sessions": r["checkout_sessions"],
            "conversion": round(r["checkout_sessions"] / r["sessions"], 4),
        }
        for r in rows[:100]
    ]


def funnel(settings: Settings, seller_id: str, from_ms: int, to_ms: int) -> dict[int, int]:
    """Sessions that started in the range, by their furthest step (0 visit .. 4 purchase)."""
    folded, changes = _consistent(
        settings, "funnel", {"dims": "categories", "kind": "furthest"}, seller_id, from_ms, to_ms
    )
    out = {step: 0 for step in range(5)}
    for r in folded:
        out[r["furthest"]] += r["sessions"]
    for step, (n, _) in changes.items():
        out[int(step)] += n
    return out


def _consistent(settings: Settings, name: str, sub: dict[str, str], seller_id: str, from_ms: int, to_ms: int):
    """The folded rows and the changes since their watermark, from the same watermark: a fold step that
    committed between the reads would be counted twice (or its sessions' states be newer than the
    watermark), so the watermark is read again afterwards and both re-read if it moved."""
    p = {"seller_id": seller_id, "from_ms": from_ms, "to_ms": to_ms}
    watermark = query.folded_to(settings)
    for _ in range(10):
        folded = query.run(settings, name, sub, **p)
        live = query.run(settings, "session_live", sub, fold_lo=watermark, **p)
        now = query.folded_to(settings)
        if now == watermark:
            return folded, {r["item"]: (r["sessions"], r["checkout_sessions"]) for r in live}
        watermark = now
    raise RuntimeError("session fold watermark kept moving while the report ran")
