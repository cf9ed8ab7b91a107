"""Issue 13 through the real gateway, broker and worker: the events of one request keep the order they
were sent in ("Order"), also after the worker is killed and restarted, and a `ts` far from the gateway's
clock is refused by name ("Time is bounded by the server")."""

from __future__ import annotations

import time

import pytest

from tests.support import factories as f
from tests.support.servers import wait_until
from tests.support.stack import Stack, new_seller

pytestmark = pytest.mark.integration

SESSIONS_PER_REQUEST, REQUESTS = 50, 3
CATEGORIES = ("lamps", "rugs", "chairs")


@pytest.fixture
def stack(settings, tmp_path):
    sellers = {"shop": new_seller(settings, "shop"), "warmup": new_seller(settings, "warmup")}
    st = Stack(settings, tmp_path, sellers)
    try:
        st.warm_up()
        yield st
    finally:
        st.close()


def _live(stack: Stack) -> dict:
    key, token = stack.sellers["shop"]
    return stack.live("shop", token)["live"]


def test_equal_ts_in_one_request_resolve_to_the_event_sent_last(stack):
    """Each session sends `home` then `category:x` in one request with the same `ts`: every session is on
    its category. Decided by the random event ids (as before `seq`), about half would be on `home`."""
    key, _ = stack.sellers["shop"]
    want: dict[str, int] = {}
    for r in range(REQUESTS):
        ts = int(time.time() * 1000)
        events = []
        for i in range(SESSIONS_PER_REQUEST):
            sid, cat = f"order-{r}-{i:03d}-session", CATEGORIES[(r + i) % len(CATEGORIES)]
            events += [f.page_view(session_id=sid, ts=ts), f.page_view("category", category=cat, session_id=sid, ts=ts)]
            want[cat] = want.get(cat, 0) + 1
        resp = stack.post(key, {"events": events})
        assert resp.status_code == 202 and resp.json() == {"accepted": len(events), "rejected": []}
    sessions = REQUESTS * SESSIONS_PER_REQUEST
    try:
        wait_until(
            lambda: (live := _live(stack))["category"] == want and live["home"] == 0,
            30,
            interval=0.2,
            what=f"{sessions} sessions on their category",
            alive=stack.worker.alive,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast: {_live(stack)}") from None

    # A SIGKILL and a restart: the new worker (state from the changelog, events since the last commit
    # replayed) still puts every session on its category; a snapshot it made says so (one more session).
    stack.worker.kill()
    stack.worker.start()
    resp = stack.post(key, f.page_view(session_id="order-after-restart"))
    assert resp.status_code == 202
    try:
        wait_until(
            lambda: (live := _live(stack))["home"] == 1 and live["category"] == want,
            90,
            interval=0.2,
            what="the same locations after a restart",
            alive=stack.worker.alive,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast: {_live(stack)}\n{stack.worker.log_tail()}") from None


def test_a_ts_far_from_the_gateways_clock_is_refused_by_name(stack):
    key, _ = stack.sellers["shop"]
    now = int(time.time() * 1000)
    day = 86_400_000
    resp = stack.post(
        key, {"events": [f.page_view(ts=now), f.page_view(ts=now + day + 60_000), f.page_view(ts=now - 3 * day)]}
    )
    assert resp.status_code == 202 and resp.json()["accepted"] == 1
    (ahead, behind) = resp.json()["rejected"]
    assert ahead["index"] == 1 and " ahead of the gateway's clock" in ahead["error"]
    assert "max_clock_skew_s=86400" in ahead["error"] and ahead["error"].endswith("- at `$.ts`")
    assert behind["index"] == 2 and "is 3 d " in behind["error"] and "before the gateway's clock" in behind["error"]
    alone = stack.post(key, f.page_view(ts=now - 2 * day))
    assert alone.status_code == 422 and alone.json()["rejected"][0]["index"] == 0
