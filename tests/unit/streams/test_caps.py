"""Per-seller caps (``streams/caps.py``): the rule "the first ``cap`` values by name, the rest under
~other" holds whatever the order of arrival and however the values are spread over partitions, both for
live gauges (capped per partition, summed, capped again) and for per-minute payment methods (folded as
events arrive, summed, capped again)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import rates
from streams.caps import OTHER, Caps, cap_gauges, cap_methods, cap_minute, method_slot

NAMES = st.text(alphabet="abcXY0-.:_", min_size=1, max_size=4).map(lambda s: "v" + s)
METHODS = st.sampled_from(["card", "paypal", "klarna", "sepa", "ideal", "apple_pay", "zz", "a1", "b_2"])
STEPS = st.sampled_from(["started", "succeeded", "failed"])


def rule(values: Counter, cap: int) -> dict[str, int]:
    """The rule written from the docs: the first ``cap`` names keep their counts, the rest sum into ~other."""
    names = sorted(v for v in values if values[v])
    out = {v: values[v] for v in names[:cap]}
    if names[cap:]:
        out[OTHER] = sum(values[v] for v in names[cap:])
    return out


def live_part(v: dict[str, int], dim: str = "category") -> dict[str, int]:
    prefix = f"live:{dim}:"
    return {k[len(prefix) :]: n for k, n in v.items() if k.startswith(prefix)}


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.dictionaries(NAMES, st.integers(1, 5), max_size=12), min_size=1, max_size=4),
    cap=st.integers(1, 6),
)
def test_capping_each_partition_then_the_sum_is_the_rule_over_the_union(parts, cap):
    caps = Caps(category=cap, offer=cap, payment_method=cap)
    total, union = Counter(), Counter()
    for part in parts:
        v = {f"live:category:{name}": n for name, n in part.items()} | {"active": len(part)}
        union.update(part)
        for k, n in cap_gauges(v, caps).items():
            total[k] += n
    seller = cap_gauges(dict(total), caps)
    assert live_part(seller) == rule(union, cap)
    assert seller["active"] == sum(len(p) for p in parts)  # other gauges untouched
    truly_folded = max(0, len(union) - cap)
    # Distinct values folded: summed over partitions, so at least the true number, and 0 only when none.
    assert seller.get("folded:category", 0) >= truly_folded
    assert (seller.get("folded:category", 0) == 0) == (truly_folded == 0)


def test_under_the_cap_nothing_changes_and_offers_have_their_own_cap():
    v = {"live:category:lamps": 2, "live:offer:o-1": 1, "live:offer:o-2": 3, "live:home": 4}
    assert cap_gauges(v, Caps(category=1, offer=2)) is v
    capped = cap_gauges(v, Caps(category=5, offer=1))
    assert capped == {
        "live:category:lamps": 2,
        "live:offer:o-1": 1,
        f"live:offer:{OTHER}": 3,
        "live:home": 4,
        "folded:offer": 1,
    }


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 2), METHODS, STEPS), max_size=60), cap=st.integers(1, 4))
def test_methods_folded_as_events_arrive_equal_the_rule_over_the_minute(events, cap):
    """Events of one minute over three partitions, in any order: each partition's bucket folds as they
    come; the sum capped again equals the rule applied to all the minute's events."""
    buckets: dict[int, dict[str, int]] = {0: {}, 1: {}, 2: {}}
    per_method: dict[str, Counter] = {}
    for p, method, step in events:
        b = buckets[p]
        slot = method_slot(b, method, cap)
        b[f"m:{slot}:{step}"] = b.get(f"m:{slot}:{step}", 0) + 1
        assert len({k.split(":")[1] for k in b} - {OTHER}) <= cap
        per_method.setdefault(step, Counter())[method] += 1
    total: Counter = Counter()
    for b in buckets.values():
        total.update(b)
    got = cap_minute(dict(total), cap)
    kept = sorted({m for c in per_method.values() for m in c})[:cap]
    for step, counts in per_method.items():
        want = {m: n for m, n in counts.items() if m in kept}
        other = sum(n for m, n in counts.items() if m not in kept)
        if other:
            want[OTHER] = other
        assert {k.split(":")[1]: n for k, n in got.items() if k.endswith(f":{step}")} == want


def test_the_hour_keeps_its_first_methods_by_name_and_adds_up_the_rest():
    arr = lambda i: [1 if j == i else 0 for j in range(3)]  # noqa: E731
    by_method = {
        m: {"started": arr(i), "succeeded": arr(i), "failed": arr(i)} for i, m in enumerate(["zz", "card", "paypal"])
    }
    capped = cap_methods(by_method, 2)
    assert set(capped) == {"card", "paypal", OTHER} and capped[OTHER]["failed"] == [1, 0, 0]
    assert cap_methods(by_method, 3) is by_method
    by_method[OTHER] = {"started": [0, 0, 5], "succeeded": [0, 0, 0], "failed": [0, 0, 0]}
    assert cap_methods(by_method, 1)[OTHER]["started"] == [1, 0, 5 + 1]


def test_rates_count_keeps_a_minutes_methods_under_the_cap():
    from livemetrics.contract import Event, Payment

    now = 1_735_732_800_000
    buckets: dict = {}
    for i in range(50):
        ev = Event(
            event_id=f"e{i}",
            type="payment_failed",
            seller_id="s",
            session_id="sess-0001",
            ts=now,
            received_at=now,
            payment=Payment(method=f"m{i:02d}", amount=1.0, currency="EUR", order_id="o"),
        )
        rates.count(buckets, ev, now, 3)
    (minute,) = buckets.values()
    assert minute["payments_failed"] == 50
    assert {k for k in minute if k.startswith("m:")} == {
        "m:m00:failed",
        "m:m01:failed",
        "m:m02:failed",
        f"m:{OTHER}:failed",
    }
    assert minute[f"m:{OTHER}:failed"] == 47
    shown = rates.series(buckets, now, 3)["by_method"]
    assert set(shown) == {"m00", "m01", "m02", OTHER} and sum(shown[OTHER]["failed"]) == 47
