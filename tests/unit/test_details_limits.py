"""`payment.details` limits: depth, entries, key and string sizes, total; each error names the path, on the
exact way and on the clean path alike (``livemetrics.details_limits``)."""

from __future__ import annotations

import json

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from livemetrics import details_limits as d
from livemetrics.settings import Settings
from livemetrics.validation import Rejection, clean_batch, parse_event
from producers.gateway.ingest import ClientInfo, ingest
from tests.support import factories as f

CLIENT = ClientInfo(seller_id="seller-a", ip="203.0.113.9", user_agent=f.CHROME)
SETTINGS = Settings(topic_prefix="details.")


def nested(levels: int) -> dict:
    """``levels`` levels of objects, ``details`` itself the first."""
    obj: dict = {"leaf": 1}
    for _ in range(levels - 1):
        obj = {"n": obj}
    return obj


def _error(details) -> str | None:
    ev = f.payment_failed(payment_overrides={"details": details})
    r = parse_event(json.dumps(ev).encode(), 0)
    body = json.dumps({"events": [f.page_view(), ev]}).encode()
    fast = ingest(body, CLIENT, SETTINGS)
    if isinstance(r, Rejection):
        assert r.reason == "schema" and clean_batch(body) is None
        assert [(x.index, x.error) for x in fast.rejected] == [(1, r.error)] and len(fast.records) == 1
        return r.error
    assert not fast.rejected and len(fast.records) == 2
    return None


def test_what_providers_send_passes():
    assert (
        _error(
            {
                "decline_code": "insufficient_funds",
                "network": {"code": "51", "advice": None},
                "risk": {"score": 12.5, "rules": ["velocity", "ip_country"]},
                "attempt": 2,
            }
        )
        is None
    )
    assert _error(nested(d.MAX_DEPTH)) is None
    assert _error({f"k{i}": i for i in range(d.MAX_ENTRIES)}) is None
    assert _error({"k" * d.MAX_KEY_CHARS: "v" * d.MAX_STRING_CHARS}) is None


def test_each_limit_is_named_with_its_path():
    assert _error(nested(d.MAX_DEPTH + 1)) == (
        f"`payment.details` is nested deeper than {d.MAX_DEPTH} levels - at `$.payment.details.n.n.n.n.n`"
    )
    assert _error({"a": [[[[["deep"]]]]]}) == (
        f"`payment.details` is nested deeper than {d.MAX_DEPTH} levels - at `$.payment.details.a[0][0][0][0]`"
    )
    assert _error({"a": 1, "b": list(range(d.MAX_ENTRIES))}) == (
        f"`payment.details` has more than {d.MAX_ENTRIES} keys and list items in all - at `$.payment.details.b`"
    )
    assert _error({"ok": 1, "x" * 101: 1}) == (
        "a key of 101 characters is over the limit of 100 (it starts 'xxxxxxxxxxxxxxxxxxxx') - at `$.payment.details`"
    )
    assert _error({"a": {"msg": "m" * 1025}}) == (
        "a string of 1025 characters is over the limit of 1024 - at `$.payment.details.a.msg`"
    )
    big = {f"k{i}": "v" * 1000 for i in range(9)}
    assert _error(big) == (
        f"`payment.details` is {len(json.dumps(big, separators=(',', ':')))} bytes as JSON, "
        f"over the limit of {d.MAX_BYTES} - at `$.payment.details`"
    )


JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text("ab é", max_size=8))


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        JSON_LEAVES,
        lambda kids: st.one_of(
            st.lists(kids, max_size=4), st.dictionaries(st.text("abc", max_size=3), kids, max_size=4)
        ),
        max_leaves=40,
    )
)
def test_the_depth_and_entry_counts_are_what_they_say(value):
    def depth(v) -> int:
        kids = list(v.values()) if isinstance(v, dict) else v if isinstance(v, list) else None
        return 0 if kids is None else 1 + max((depth(k) for k in kids), default=0)

    def entries(v) -> int:
        kids = list(v.values()) if isinstance(v, dict) else v if isinstance(v, list) else []
        return len(kids) + sum(entries(k) for k in kids)

    details = {"v": value}
    error = d.details_error(details)
    assert (error is None) == (depth(details) <= d.MAX_DEPTH and entries(details) <= d.MAX_ENTRIES), error


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text('\x00\x1f"\\aé€😀', max_size=d.MAX_STRING_CHARS),
            st.integers(-(10**40), 10**40),
            st.builds(lambda ch, n: ch * n, st.sampled_from('\x00"aé😀'), st.integers(0, d.MAX_STRING_CHARS)),
            st.floats(allow_nan=False, allow_infinity=False),
            st.none(),
            st.booleans(),
        ),
        max_size=d.MAX_ENTRIES - 1,
    )
)
@example(["\x00" * 1024] * 2)  # 6 bytes a character: over the limit
@example(["😀" * 1024] * 2)  # 4 bytes a character, no escape: just over
@example(["\x00" * 1000, "é" * 1000])  # 8,013 bytes: under
def test_the_size_limit_is_the_encoded_size_whatever_the_bound_skips(values):
    """The JSON size is measured only past an upper bound: a body with escapes and wide characters near
    the limit is judged on its real encoded size."""
    details = {"v": values}
    over = len(msgspec.json.encode(details)) > d.MAX_BYTES
    assert (d.details_error(details) is not None) == over
