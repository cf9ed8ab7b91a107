"""Per-seller caps on the distinct values that live state keeps (pure; docs/live-semantics.md, Bounded state).

A storefront picks its own category names, offer ids and payment methods, and a browser key is public:
without a bound, 20,000 category names grew one seller's sums row past the broker's message limit and
stopped the worker. So each seller keeps at most ``Caps.category`` live categories, ``Caps.offer`` live
offers and ``Caps.payment_method`` payment methods per minute of rates; what is over a cap is counted
under ``OTHER``, a key no valid value can spell (slugs and methods start with a letter or a digit).

The rule: of the values a seller has (live categories, live offers; payment methods with events in a
minute, or in the hour shown), the ones kept are the *first ``cap`` by name* (code point order); every
other value's count goes to ``OTHER``. Name order depends on the values alone, never on arrival order,
so the rule is the same after a replay or a restart, a recount from raw events applies it in one line,
and it composes over the seller's source partitions: a value among the first ``cap`` of the seller's
union is among the first ``cap`` of every partition that holds it, so each partition's capped row keeps
its exact count, and capping their sum again gives exactly the capped seller total.

``folded:<dimension>`` counts the distinct values folded, summed over the seller's source partitions
(a value folded on two partitions counts twice): 0 exactly when nothing was folded.
"""

from __future__ import annotations

import msgspec

from livemetrics.snapshot import FOLDED_DIMENSIONS

OTHER = "~other"
# Live gauge keys of the capped dimensions (``streams/state.py::contribution``): ``live:<loc>``.
LIVE_PREFIXES = {dim: f"live:{dim}:" for dim in FOLDED_DIMENSIONS}
# Per-minute rate keys of payment methods (``streams/rates.py::metrics_of``): ``m:<method>:<step>``.
METHOD_STEPS = ("started", "succeeded", "failed")


class Caps(msgspec.Struct, frozen=True):
    category: int = 200
    offer: int = 500
    payment_method: int = 10

    @classmethod
    def from_settings(cls, s) -> Caps:
        return cls(category=s.live_max_categories, offer=s.live_max_offers, payment_method=s.live_max_payment_methods)


def cap_gauges(v: dict[str, int], caps: Caps) -> dict[str, int]:
    """``v`` (gauges, ``{key: count}``) with the live categories and offers over their caps folded into
    ``OTHER``, adding the number folded to ``folded:<dimension>``. ``v`` itself when nothing is over."""
    out = None
    for dim, prefix in LIVE_PREFIXES.items():
        limit = getattr(caps, dim)
        other = prefix + OTHER
        names = [k for k in v if k.startswith(prefix) and k != other]
        if len(names) <= limit:
            continue
        if out is None:
            out = dict(v)
        names.sort()  # the same prefix: key order is name order
        dropped = names[limit:]
        out[other] = out.get(other, 0) + sum(out.pop(k) for k in dropped)
        out[f"folded:{dim}"] = out.get(f"folded:{dim}", 0) + len(dropped)
    return v if out is None else out


def _method(key: str) -> str:
    return key.split(":", 2)[1]


def method_slot(bucket: dict[str, int], method: str, limit: int) -> str:
    """The method under which one event of ``method`` counts in a minute's ``bucket`` (mutated): itself
    while it is among the first ``limit`` names the minute has seen, else ``OTHER``. A name that comes in
    before the last kept one pushes that one's counts into ``OTHER`` (counts in a minute only grow, so a
    method folded once never needs to come back)."""
    kept = {_method(k) for k in bucket if k.startswith("m:")}
    kept.discard(OTHER)
    if method in kept or len(kept) < limit:
        return method
    last = max(kept)
    if method > last:
        return OTHER
    for step in METHOD_STEPS:
        n = bucket.pop(f"m:{last}:{step}", 0)
        if n:
            bucket[f"m:{OTHER}:{step}"] = bucket.get(f"m:{OTHER}:{step}", 0) + n
    return method


def cap_minute(counts: dict[str, int], limit: int) -> dict[str, int]:
    """One minute's counts (``{metric: n}``, summed over partitions) with payment methods past the first
    ``limit`` names folded into ``OTHER``; ``counts`` itself when nothing is over."""
    kept = sorted({_method(k) for k in counts if k.startswith("m:")} - {OTHER})
    if len(kept) <= limit:
        return counts
    dropped = set(kept[limit:])
    out: dict[str, int] = {}
    for k, n in counts.items():
        if k.startswith("m:") and _method(k) in dropped:
            k = f"m:{OTHER}:{k.split(':', 2)[2]}"
        out[k] = out.get(k, 0) + n
    return out


def cap_methods(by_method: dict[str, dict[str, list[int]]], limit: int) -> dict[str, dict[str, list[int]]]:
    """``rates_per_minute.by_method`` with the methods past the first ``limit`` names of the hour folded
    into ``OTHER`` (element by element); ``by_method`` itself when nothing is over."""
    kept = sorted(m for m in by_method if m != OTHER)
    if len(kept) <= limit:
        return by_method
    out = {m: by_method[m] for m in kept[:limit]}
    other = by_method.get(OTHER)
    other = {step: list(arr) for step, arr in other.items()} if other else None
    for m in kept[limit:]:
        if other is None:
            other = {step: list(arr) for step, arr in by_method[m].items()}
            continue
        for step, arr in by_method[m].items():
            acc = other[step]
            for i, n in enumerate(arr):
                acc[i] += n
    out[OTHER] = other  # type: ignore[assignment]
    return out
