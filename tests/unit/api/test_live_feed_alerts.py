"""The live feed's alert memory: de-duplication per (seller, alert id), and erase records that drop a
customer's alerts (held, queued, and arriving late) but nothing else."""

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from api.live_feed import LiveFeed
from livemetrics import erasure_notice
from livemetrics.settings import Settings


def alert(seller: str, alert_id: str, email: str = "", phone: str = "", at: int = 1_000) -> dict:
    return {
        "kind": "payment_failed",
        "alert_id": alert_id,
        "seller_id": seller,
        "at": at,
        "customer": {"email": email, "phone": phone},
    }


def ids(feed: LiveFeed, seller: str) -> list[str]:
    return [a["alert_id"] for a in feed.recent_alerts.get(seller, ())]


def test_the_same_event_id_from_two_sellers_reaches_both_and_a_redelivery_neither():
    async def run():
        feed = LiveFeed(Settings())
        sub_b = feed.subscribe("shop-b")
        for a in (alert("shop-a", "ev-1"), alert("shop-b", "ev-1"), alert("shop-a", "ev-1"), alert("shop-b", "ev-1")):
            feed._deliver("alert", a["seller_id"], a)
        return feed, sub_b

    feed, sub_b = asyncio.run(run())
    assert ids(feed, "shop-a") == ["ev-1"] and ids(feed, "shop-b") == ["ev-1"]
    assert [a["seller_id"] for a in sub_b.alerts] == ["shop-b"]


def test_an_erase_record_drops_the_customers_alerts_everywhere_and_keeps_the_rest():
    async def run():
        feed = LiveFeed(Settings())
        sub = feed.subscribe("shop-a")
        for a in (
            alert("shop-a", "1", email="Ada@Example.com"),
            alert("shop-b", "2", phone="+44 20 7946 0958"),
            alert("shop-a", "3", email="bob@example.com"),
        ):
            feed._deliver("alert", a["seller_id"], a)
        feed._deliver("erasure", "", erasure_notice.notice(" ada@example.COM ", "44 (20) 7946-0958", at_ms=5_000))
        # late: an older alert of the customer after the record is dropped; a newer one is new data
        feed._deliver("alert", "shop-a", alert("shop-a", "4", email="ada@example.com", at=4_000))
        feed._deliver("alert", "shop-a", alert("shop-a", "5", email="ada@example.com", at=6_000))
        return feed, sub

    feed, sub = asyncio.run(run())
    assert ids(feed, "shop-a") == ["5", "3"] and ids(feed, "shop-b") == []
    assert [a["alert_id"] for a in sub.alerts] == ["3", "5"]


@given(email=st.emails(), other=st.emails(), phone=st.from_regex(r"\+?[0-9 ()-]{4,20}", fullmatch=True))
def test_a_notice_matches_exactly_the_customer_it_names(email, other, phone):
    n = erasure_notice.notice(email, None, at_ms=10)
    assert erasure_notice.matches(n, {"at": 10, "customer": {"email": email.upper()}})
    assert erasure_notice.matches(n, {"at": 11, "customer": {"email": email}}) is False
    assert erasure_notice.matches(n, {"at": 9, "customer": {"email": other}}) is (other.lower() == email.lower())
    assert email not in str(n) and email.lower() not in str(n)
    digits = erasure_notice.phone_digits(phone)
    p = erasure_notice.notice(None, phone, at_ms=10)
    assert erasure_notice.matches(p, {"at": 1, "customer": {"phone": f"({digits})"}}) is bool(digits)


def test_one_sellers_flood_of_alerts_does_not_make_another_sellers_redelivered_alert_new():
    """The de-duplication memory was one window of 50,000 alerts for every seller: a public browser key's
    flood of payment failures (200 a second per gateway) pushed another seller's alerts out of it within
    minutes, and a redelivery (upstream is at least once, e.g. after a worker restart) reached that seller's
    dashboard a second time. Now one seller holds at most its share of the window (ALERTS_SEEN_PER_SELLER)."""

    async def run():
        feed = LiveFeed(Settings())
        sub = feed.subscribe("shop-a")
        feed._deliver("alert", "shop-a", alert("shop-a", "a-1"))
        for i in range(60_000):
            feed._deliver("alert", "shop-b", alert("shop-b", f"b-{i}"))
        feed._deliver("alert", "shop-a", alert("shop-a", "a-1"))  # redelivered
        feed._deliver("alert", "shop-b", alert("shop-b", "b-59999"))  # the flood's own latest: still known
        return feed, sub

    feed, sub = asyncio.run(run())
    assert [a["alert_id"] for a in sub.alerts] == ["a-1"]  # old code: ["a-1", "a-1"]
    assert ids(feed, "shop-b")[0] == "b-59999" and ids(feed, "shop-b").count("b-59999") == 1
    assert len(feed._seen_alerts) <= 50_000
