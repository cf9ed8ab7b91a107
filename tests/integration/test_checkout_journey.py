"""One customer's journey through checkout and payment, as a seller sees it live (regression: the
numbers must follow a session into checkout and payment, not lose it)."""

from __future__ import annotations

import pytest

from tests.support import factories as f
from tests.support.servers import wait_until
from tests.support.stack import Stack, new_seller

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(settings, tmp_path):
    sellers = {"shop": new_seller(settings, "shop"), "warmup": new_seller(settings, "warmup")}
    st = Stack(settings, tmp_path, sellers)
    try:
        st.warm_up()
        yield st
    finally:
        st.close()


def test_a_session_is_followed_through_checkout_and_payment(stack):
    key, token = stack.sellers["shop"]
    sid = "journey-0001"

    def step(event, check, what):
        assert stack.post(key, event).status_code == 202
        return wait_until(lambda: check(s := stack.live("shop", token)) and s, 5, interval=0.1, what=what)

    step(f.page_view(session_id=sid), lambda s: s["live"]["home"] == 1, "home")
    step(
        f.page_view("category", category="lamps", session_id=sid),
        lambda s: s["live"]["category"] == {"lamps": 1} and s["live"]["home"] == 0,
        "category",
    )
    step(
        f.checkout_started(session_id=sid),
        lambda s: s["live"]["checkout"] == 1 and not s["live"]["category"],
        "checkout",
    )
    step(f.payment(session_id=sid), lambda s: s["live"]["payment"] == 1 and s["live"]["checkout"] == 0, "payment")
    snap = step(f.payment_failed(session_id=sid), lambda s: s["payment_failures_30m"] == 1, "failure")
    assert snap["live"]["payment"] == 1 and snap["active_sessions"] == 1
    snap = step(f.payment_succeeded(session_id=sid), lambda s: s["purchased_30m"] == 1, "purchase")
    assert snap["live"]["payment"] == 0 and snap["active_sessions"] == 1 and snap["payment_failures_30m"] == 1
    assert sum(v for k, v in snap["live"].items() if isinstance(v, int)) == 0
