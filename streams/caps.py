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

import math

import msgspec

from livemetrics.once_per import OncePer as OncePer  # moved to the core; streams import it from here
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
    if len(v) <= _fewest(caps):  # no dimension can be over its cap (a seller's usual row): nothing to look at
        return v
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


def _fewest(caps: Caps) -> int:
    return min(getattr(caps, dim) for dim in LIVE_PREFIXES)


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


# --- Live sessions per seller (docs/live-semantics.md, "Live sessions per seller") -------------------------
# Every new session id is a row in the sessions table (RocksDB and its changelog) for up to the session
# timeout plus the recent window, and a browser key is public: one key could fill the workers' state for
# every seller. So each (seller, partition) holds at most ``per_partition`` sessions; the seller's new
# sessions past it are not kept (not counted live), and its snapshot says so.
#
# The worker's total (``live_sessions_max``; each partition its share, ``sessions_per_partition``) is shared
# fairly: once a partition holds its total, a new session is refused for a seller holding its fair share or
# more (the total over the sellers holding sessions there, max-min), never for a seller under it. Without
# eviction (a held session is never dropped) the sellers under their share can take the total past the bound:
# each climbs to at most its share, so the ones already there add at most the bound once, and sellers arriving
# later at most a share each (a share that shrinks as they come). So a hard ceiling, ``TOTAL_CEILING`` times
# the bound, refuses every new session: what the partition holds stays under it whatever the input; sellers
# under their share meet it only when, within one session's life, the sellers holding sessions when the bound
# was reached all climb to their share and about as many new ones again arrive (docs/live-semantics.md).
TOTAL_CEILING = 2
SELLER, TOTAL = "seller", "total"  # why a new session was refused: its seller's cap, the worker's total


def sessions_per_partition(per_seller: int, partitions: int) -> int:
    """Each (seller, partition)'s share of ``per_seller`` live sessions. Session ids are spread over the raw
    topics' partitions by hash, so a partition's share is the even split plus a margin of four standard
    deviations of that spread (a seller with random session ids and at most ``per_seller`` sessions fills
    one partition's share with a probability of about 3e-5), never more than ``per_seller`` itself. The
    seller's total is at most ``partitions`` x this."""
    if partitions <= 1:
        return per_seller
    share = per_seller / partitions
    return min(per_seller, math.ceil(share + 4 * math.sqrt(share)))


class HeldSessions:
    """One partition's live sessions per seller while a batch is folded: ``base`` (the count the table
    holds: rebuilt from it after every assignment, updated once a batch is written) plus this batch's
    changes. A session is *held* while the table holds (or, once the batch is written, will hold) its key.

    Only a session that is not held can be refused: when its seller's count is at ``cap``, or when the
    partition holds ``total_cap`` sessions (every seller's) and the seller holds its fair share of it or more
    (``over_share``), or the partition holds ``TOTAL_CEILING`` times ``total_cap``. A held session is never
    refused, so a seller's sessions admitted before it reached a cap keep being tracked exactly. The decision
    depends only on the table's content and the events and ticks before it on the partition, never on batch
    boundaries or on memory: the same input in the same order gives the same table."""

    def __init__(self, base: dict[str, int], cap: int, total_cap: int | None = None) -> None:
        self.base, self.cap, self.total_cap = base, cap, total_cap
        self.delta: dict[str, int] = {}
        # every seller's sessions, and the sellers holding any (base holds no zero counts: apply_held)
        self.total = sum(base.values()) if total_cap is not None else 0
        self.holders = len(base)

    def held(self, seller: str) -> int:
        return self.base.get(seller, 0) + self.delta.get(seller, 0)

    def at_cap(self, seller: str) -> bool:
        """Whether a new session of ``seller`` would be refused now."""
        return self.refusal(seller) is not None

    def share(self, seller: str) -> int:
        """The seller's fair share of the partition's total: the total over the sellers holding sessions,
        the seller counted (one more when it holds none yet)."""
        assert self.total_cap is not None
        holders = self.holders + (0 if self.held(seller) else 1)
        return max(1, self.total_cap // holders)

    def refusal(self, seller: str) -> str | None:
        """Why a new session of ``seller`` would be refused now (``SELLER``, ``TOTAL``), or None."""
        n = self.held(seller)
        if n >= self.cap:
            return SELLER
        if self.total_cap is not None and self.total >= self.total_cap:
            if self.total >= TOTAL_CEILING * self.total_cap or n >= self.share(seller):
                return TOTAL
        return None

    def change(self, seller: str, was: bool, now: bool) -> None:
        """A session of ``seller`` went from held (``was``) to held (``now``) or not."""
        if was != now:
            before = self.held(seller)
            step = 1 if now else -1
            self.delta[seller] = self.delta.get(seller, 0) + step
            self.total += step
            self.holders += (before == 0) - (before + step == 0)

    def admit(self, seller: str, was: bool, now: bool) -> bool:
        """Whether a change of a session from held ``was`` to ``now`` is kept (and then counted): False
        exactly when it would add a session that ``refusal`` refuses."""
        if now and not was and self.at_cap(seller):
            return False
        self.change(seller, was, now)
        return True


def apply_held(base: dict[str, int], delta: dict[str, int]) -> None:
    """Add a written batch's changes into ``base`` (mutated), dropping sellers that fall to zero."""
    for seller, d in delta.items():
        n = base.get(seller, 0) + d
        if n > 0:
            base[seller] = n
        else:
            base.pop(seller, None)
