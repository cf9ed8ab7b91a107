"""The dashboard's history charts, payment-error table, admin seller switch and accessibility, in
headless Chromium against a real stack (gateway, Faust worker, API with the embedded ClickHouse sink).

A seller's history is seeded two ways: past days backfilled through a signed server key, and today's
sessions sent live through the browser key (so the worker raises payment alerts). Every number the
test expects is recomputed here from the events it sent."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from livemetrics import keys
from producers.sdk.client import Client
from tests.browser.test_dashboard import browser, take_screenshots  # noqa: F401 - shared fixture
from tests.support import factories as f
from tests.support.servers import get_json, wait_until
from tests.support.stack import Stack, module_settings, new_seller

pytestmark = [pytest.mark.integration, pytest.mark.browser]
SELLER = "hist"
TZ = "Asia/Tokyo"  # +09:00 all year: the charts must move UTC hours and days into it
WEEKDAYS = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# axe-core from npm, kept with the tests (the dashboard never serves it): injected by the browser itself
# before each document of the accessibility test's context, so the page's CSP does not apply to it.
AXE = Path(__file__).resolve().parents[1] / "support" / "vendor" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def stack(kafka, clickhouse_dsn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash-history")
    s = module_settings(kafka, clickhouse_dsn, tmp)
    sellers = {name: new_seller(s, name) for name in (SELLER, "warmup", "a11y")}
    st = Stack(s, tmp, sellers)
    try:
        server_key, rec = keys.new_server_key(SELLER, s.key_encryption_key.get_secret_value())
        keys.publish(s, rec)
        no_pii, nrec = keys.new_key("st", SELLER, label="no-pii", can_read_pii=False)
        keys.publish(s, nrec)
        st.extra = {"server_key": server_key, "no_pii": no_pii}
        st.warm_up()
        for k in (server_key, no_pii):
            st.wait_keys(k)
        yield st
    finally:
        st.close()


def at(d: date, hh: int, mm: int) -> int:
    return int(datetime(d.year, d.month, d.day, hh, mm, tzinfo=UTC).timestamp() * 1000)


def session(sid: str, start_ms: int | None, steps: list[tuple]) -> list[dict]:
    """A session's events, one minute apart from ``start_ms`` (None: now, as the factories stamp them)."""
    out = []
    for i, (kind, arg) in enumerate(steps):
        kw = {"session_id": sid}
        if start_ms is not None:
            kw["ts"] = start_ms + i * 60_000
        if kind == "page":
            ev = f.page_view(
                arg[0],
                category=arg[1] if arg[0] == "category" else None,
                offer_id=arg[1] if arg[0] == "offer" else None,
                **kw,
            )
        elif kind == "checkout":
            ev = f.checkout_started(customer=arg, **kw)
        else:  # payment_started / payment_succeeded / payment_failed: arg = payment fields, customer
            pay, cust = arg
            ev = f.payment(kind, customer=cust, payment_overrides=pay, **kw)
        out.append(ev)
    return out


@pytest.fixture(scope="module")
def seeded(stack):
    """Seven sessions: four backfilled two days ago (UTC), three live now; returns what was sent."""
    day = (datetime.now(UTC) - timedelta(days=2)).date()
    ada = f.customer(email="ada.l1@example.com", phone="+44 20 7946 0958", name="Ada Lovelace")
    grace = f.customer(email="grace.l2@example.com", phone="+1 555 0100", name="Grace Hopper")
    bob = f.customer(email="bob@example.com", name="Bob Past")
    card = lambda amount, order, **kw: (
        {"method": "card", "amount": amount, "currency": "EUR", "order_id": order, **kw}
    )  # noqa: E731
    past = (
        session(
            "sess-b1-history",
            at(day, 1, 10),
            [
                ("page", ("home", None)),
                ("page", ("category", "lamps")),
                ("page", ("offer", "summer-sale")),
                ("checkout", bob),
                ("payment_started", (card(50.0, "ORD-B1"), bob)),
                ("payment_succeeded", (card(50.0, "ORD-B1"), bob)),
            ],
        )
        + session(
            "sess-b2-history",
            at(day, 5, 20),
            [
                ("page", ("home", None)),
                ("page", ("category", "chairs")),
                ("checkout", bob),
                ("payment_started", ({"method": "paypal", "order_id": "ORD-B2"}, bob)),
                (
                    "payment_failed",
                    (
                        {
                            "method": "paypal",
                            "order_id": "ORD-B2",
                            "error_code": "paypal_timeout",
                            "error_message": "PayPal did not answer",
                        },
                        bob,
                    ),
                ),
            ],
        )
        + session(
            "sess-b3-history",
            at(day, 5, 40),
            [
                ("page", ("category", "lamps")),
                ("checkout", bob),
                ("payment_started", (card(20.0, "ORD-B3"), bob)),
                ("payment_failed", (card(20.0, "ORD-B3", error_code="card_declined"), bob)),
            ],
        )
        + session("sess-b4-history", at(day, 5, 50), [("page", ("category", "lamps"))])
    )
    live = (
        session(
            "sess-l1-history",
            None,
            [
                ("page", ("home", None)),
                ("page", ("category", "lamps")),
                ("page", ("offer", "bundle-42")),
                ("page", ("offer", "bundle-42")),
                ("checkout", ada),
                ("payment_started", (card(39.0, "ORD-L1"), ada)),
                (
                    "payment_failed",
                    (card(39.0, "ORD-L1", error_code="card_declined", error_message="Do not honour"), ada),
                ),
            ],
        )
        + session(
            "sess-l2-history",
            None,
            [
                ("page", ("home", None)),
                ("page", ("category", "tables")),
                ("checkout", grace),
                (
                    "payment_started",
                    ({"method": "wallet", "order_id": "ORD-L2", "amount": 12.0, "currency": "EUR"}, grace),
                ),
                (
                    "payment_failed",
                    (
                        {
                            "method": "wallet",
                            "order_id": "ORD-L2",
                            "amount": 12.0,
                            "currency": "EUR",
                            "error_code": "insufficient_funds",
                            "error_message": "Not enough money",
                        },
                        grace,
                    ),
                ),
            ],
        )
        + session(
            "sess-l3-history",
            None,
            [
                ("page", ("home", None)),
                ("checkout", ada),
                ("payment_started", (card(30.0, "ORD-L3"), ada)),
                ("payment_succeeded", (card(30.0, "ORD-L3"), ada)),
            ],
        )
    )
    with Client(stack.gateway.url, stack.extra["server_key"], timeout=15, backfill=True) as c:
        res = c.send(past)
    assert res.accepted == len(past) and not res.rejected, res
    r = stack.post(stack.sellers[SELLER][0], {"events": live})
    assert r.status_code == 202 and r.json()["accepted"] == len(live), r.text
    events = past + live
    # Everything stored: the rollups, the session facts and both live alerts (sink batches every second).
    api, token = stack.api.url, stack.sellers[SELLER][1]
    q = {
        "from": (day - timedelta(days=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "tz": TZ,
    }

    def stored() -> bool:
        pm = httpx.get(
            f"{api}/v1/sellers/{SELLER}/reports/payment-methods",
            params=q,
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        ).json()["rows"]
        cats = httpx.get(
            f"{api}/v1/sellers/{SELLER}/reports/categories",
            params=q,
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        ).json()["rows"]
        errs = get_json(f"{api}/v1/sellers/{SELLER}/payment-errors", token)["items"]
        return (
            sum(r["succeeded"] + r["failed"] for r in pm) == 6
            and sum(r["sessions"] for r in cats) == 6
            and len(errs) == 2
        )

    wait_until(stored, 60, interval=0.5, what="seeded history in ClickHouse")
    return {"day": day, "events": events}


# --- what the reports must say, recomputed from the events ------------------------------------------
def local(ev: dict) -> datetime:
    return datetime.fromtimestamp(ev["ts"] / 1000, ZoneInfo(TZ))


def expected_hourly(events: list[dict]) -> list[dict]:
    cells: dict = defaultdict(lambda: {"pv": 0, "sessions": set(), "co": 0, "pu": 0})
    for ev in events:
        d = local(ev)
        c = cells[(d.isoweekday(), d.hour)]
        if ev["type"] == "page_view":
            c["pv"] += 1
            c["sessions"].add(ev["session_id"])
        c["co"] += ev["type"] == "checkout_started"
        c["pu"] += ev["type"] == "payment_succeeded"
    return sorted(
        (
            {
                "Weekday": WEEKDAYS[wd],
                "Hour": f"{hr:02d}:00",
                "Page views": str(c["pv"]),
                "Sessions": str(len(c["sessions"])),
                "Checkouts": str(c["co"]),
                "Purchases": str(c["pu"]),
            }
            for (wd, hr), c in cells.items()
            if c["pv"]
        ),
        key=lambda r: (r["Weekday"], r["Hour"]),
    )


def expected_error_trends(events: list[dict]) -> list[dict]:
    n: dict = defaultdict(int)
    for ev in events:
        if ev["type"] == "payment_failed":
            n[(local(ev).date().isoformat(), ev["payment"]["error_code"])] += 1
    return [{"Day": d, "Error code": code, "Failures": str(v)} for (d, code), v in sorted(n.items())]


# --- page helpers ---------------------------------------------------------------------------------
def sign_in(page: Page, url: str, token: str) -> None:
    page.goto(url)
    page.get_by_label("Read token").fill(token)
    page.get_by_role("button", name="Open dashboard").click()
    page.wait_for_selector('#conn[data-state="live"]', timeout=15000)


def table(page: Page, report: str) -> list[dict]:
    """The rows of a report's data table (opened like a user would), as {header: cell text}."""
    sec = page.locator(f"#report-{report}")
    details = sec.locator("details.data")
    if details.get_attribute("open") is None:
        sec.locator("summary").click()
    headers = sec.locator("thead th").all_inner_texts()
    return [dict(zip(headers, tr.locator("td").all_inner_texts())) for tr in sec.locator("tbody tr").all()]


def open_history(page: Page, start: date, end: date, tz: str) -> None:
    page.get_by_role("tab", name="History").click()
    form = page.locator("#history-form")
    form.get_by_label("From", exact=True).fill(start.isoformat())
    form.get_by_label("To", exact=True).fill(end.isoformat())
    form.get_by_label("Time zone", exact=True).select_option(tz)
    form.get_by_role("button", name="Show").click()
    expect(page.locator("#history-msg")).to_have_text(f"{start} to {end} (whole days), {tz}", timeout=15000)


def test_history_charts_show_the_seeded_numbers_in_the_chosen_zone(stack, seeded, browser, screenshots_dir):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="Europe/Berlin")
    page = ctx.new_page()
    try:
        sign_in(page, f"{stack.api.url}/dashboard", stack.sellers[SELLER][1])
        today = datetime.now(ZoneInfo(TZ)).date()
        open_history(page, today - timedelta(days=3), today, TZ)
        events = seeded["events"]
        # the API runs the sink, and everything seeded is stored: GET /v1/history/lag says 0 s behind
        expect(page.locator("#history-lag")).to_have_text("History is up to date.")

        # Hourly pattern: every (weekday, hour) cell in Tokyo time, and the chart's column per hour.
        hourly = sorted(table(page, "hourly"), key=lambda r: (r["Weekday"], r["Hour"]))
        assert hourly == expected_hourly(events)
        per_hour = defaultdict(int)
        for ev in events:
            per_hour[local(ev).hour] += ev["type"] == "page_view"
        columns = page.locator("#report-hourly svg rect title").all_text_contents()
        assert columns == [f"{h:02d}:00: {per_hour[h]}" for h in range(24)]
        backfilled = [local(e).hour for e in events if e["session_id"] == "sess-b1-history"]
        assert backfilled[0] == 10  # 01:10 UTC is 10:10 in Tokyo: the zone really was applied

        cats = table(page, "categories")
        assert cats[0] == {
            "Category": "lamps",
            "Views": "4",
            "Sessions": "4",
            "Started checkout": "3",
            "Conversion": "75.0 %",
        }
        assert sorted(cats[1:], key=lambda r: r["Category"]) == [
            {"Category": c, "Views": "1", "Sessions": "1", "Started checkout": "1", "Conversion": "100.0 %"}
            for c in ("chairs", "tables")
        ]
        assert page.locator("#report-categories .chart-bars > div").first.inner_text().split() == ["lamps", "4"]

        assert table(page, "offers") == [
            {"Offer": "bundle-42", "Views": "2", "Sessions": "1", "Started checkout": "1", "Conversion": "100.0 %"},
            {"Offer": "summer-sale", "Views": "1", "Sessions": "1", "Started checkout": "1", "Conversion": "100.0 %"},
        ]

        funnel = {r["Step"]: r for r in table(page, "funnel")}
        assert funnel["visit"]["Sessions"] == "7" and funnel["purchase"]["Sessions"] == "2"

        methods = {r["Method"]: r for r in table(page, "payment-methods")}
        assert methods == {
            "card": {
                "Method": "card",
                "Started": "4",
                "Succeeded": "2",
                "Failed": "2",
                "Success rate": "50.0 %",
                "Share": "66.7 %",
                "Revenue": "€80.00",
            },
            "paypal": {
                **methods.get("paypal", {}),
                "Method": "paypal",
                "Started": "1",
                "Succeeded": "0",
                "Failed": "1",
                "Success rate": "0.0 %",
                "Share": "16.7 %",
            },
            "wallet": {
                **methods.get("wallet", {}),
                "Method": "wallet",
                "Started": "1",
                "Succeeded": "0",
                "Failed": "1",
                "Success rate": "0.0 %",
                "Share": "16.7 %",
            },
        }
        bars = page.locator("#report-payment-methods .chart-bars > div").all_inner_texts()
        assert [b.split()[0] for b in bars][0] == "card" and bars[0].split()[-1] == "50%"

        trends = sorted(table(page, "error-trends"), key=lambda r: (r["Day"], r["Error code"]))
        assert trends == expected_error_trends(events)
        per_day = defaultdict(int)
        for ev in events:
            per_day[local(ev).date()] += ev["type"] == "payment_failed"
        range_days = [today - timedelta(days=n) for n in (3, 2, 1, 0)]  # every day, the quiet ones as 0
        assert page.locator("#report-error-trends svg rect title").all_text_contents() == [
            f"{d.isoformat()}: {per_day[d]}" for d in range_days
        ]
        assert sum(per_day[d] for d in range_days) == 4
        top = page.locator("#report-error-trends .causes li").first.inner_text()
        assert top.startswith("card_declined") and "2 (50.0 %)" in top

        # Another zone and a range without the backfilled day: the numbers follow.
        open_history(page, today, today, "UTC" if datetime.now(UTC).date() == today else TZ)
        assert {r["Category"] for r in table(page, "categories")} == {"lamps", "tables"}
        open_history(page, today - timedelta(days=3), today, TZ)
        table(page, "categories")
        take_screenshots(page, screenshots_dir, "history")
    finally:
        ctx.close()


def test_a_slow_earlier_load_does_not_paint_over_the_range_asked_for(stack, seeded, browser):
    """The tab's first load (default range, the browser's zone) answers after the user's own range:
    the page keeps showing what the user asked for."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="Europe/Berlin")
    page = ctx.new_page()
    held = []

    def hold_default_range(route):
        if "tz=Europe%2FBerlin" in route.request.url:
            held.append(route)  # answered only after the user's range is on screen
        else:
            route.continue_()

    try:
        sign_in(page, f"{stack.api.url}/dashboard", stack.sellers[SELLER][1])
        page.route("**/reports/**", hold_default_range)
        today = datetime.now(ZoneInfo(TZ)).date()
        open_history(page, today - timedelta(days=3), today, TZ)
        assert held, "the default range's requests were never made"
        for route in held:
            route.continue_()
        # the held answers arrive; a stale answer would repaint the message and the charts
        page.wait_for_load_state("networkidle")
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")
        expect(page.locator("#history-msg")).to_have_text(f"{today - timedelta(days=3)} to {today} (whole days), {TZ}")
        tz_texts = page.locator("#reports").inner_text()
        assert "Europe/Berlin" not in tz_texts
    finally:
        ctx.close()


def error_row(page: Page, order: str):
    return page.locator("#errors-table tbody tr", has_text=order)


def test_payment_error_table_filters_marks_and_masks(stack, seeded, browser, screenshots_dir):
    api, token = stack.api.url, stack.sellers[SELLER][1]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = ctx.new_page()
    try:
        sign_in(page, f"{api}/dashboard", token)
        page.get_by_role("tab", name="Payment errors").click()
        rows = page.locator("#errors-table tbody tr")
        expect(rows).to_have_count(2, timeout=10000)
        expect(error_row(page, "ORD-L1")).to_contain_text("ada.l1@example.com")
        expect(error_row(page, "ORD-L1")).to_contain_text("reported by the browser")  # sent with a browser key
        assert error_row(page, "ORD-L1").locator('a[href="mailto:ada.l1@example.com"]').count() == 1

        filters = page.locator("#error-filters")
        filters.get_by_label("Method", exact=True).fill("wallet")
        filters.get_by_role("button", name="Apply").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("insufficient_funds")
        expect(rows.first).to_contain_text("grace.l2@example.com")
        filters.get_by_label("Method", exact=True).fill("")
        filters.get_by_label("Error code", exact=True).fill("card_declined")
        filters.get_by_role("button", name="Apply").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("ORD-L1")
        filters.get_by_label("Error code", exact=True).fill("")
        filters.get_by_label("To", exact=True).fill(seeded["day"].isoformat())  # before both live alerts
        filters.get_by_role("button", name="Apply").click()
        expect(page.locator("#errors-msg")).to_have_text("No failed payments match.")
        expect(rows).to_have_count(0)
        filters.get_by_label("To", exact=True).fill("")
        filters.get_by_role("button", name="Apply").click()
        expect(rows).to_have_count(2)

        note = "Called her, will retry the card tomorrow"
        page.get_by_label("Follow-up status for order ORD-L1").select_option("contacted")
        page.get_by_label("Note for order ORD-L1").fill(note)
        page.get_by_role("button", name="Save follow-up for order ORD-L1").click()
        expect(error_row(page, "ORD-L1")).to_contain_text("saved")
        expect(error_row(page, "ORD-L1").locator(".pill")).to_have_text("contacted")
        take_screenshots(page, screenshots_dir, "payment-errors")

        page.reload()  # the tab is in the URL (#errors); the mark comes back from the API
        expect(rows).to_have_count(2, timeout=10000)
        expect(error_row(page, "ORD-L1").locator(".pill")).to_have_text("contacted")
        expect(page.get_by_label("Note for order ORD-L1")).to_have_value(note)
        expect(page.get_by_label("Follow-up status for order ORD-L1")).to_have_value("contacted")
        expect(error_row(page, "ORD-L2").locator(".pill")).to_have_text("open")
        stored = get_json(f"{api}/v1/sellers/{SELLER}/payment-errors?status=contacted", token)["items"]
        assert [(i["order"]["order_id"], i["note"]) for i in stored] == [("ORD-L1", note)]
    finally:
        ctx.close()

    # A token without personal-data permission: the same rows, contacts masked, no mail/phone links.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = ctx.new_page()
    try:
        sign_in(page, f"{api}/dashboard/#errors", stack.extra["no_pii"])
        rows = page.locator("#errors-table tbody tr")
        expect(rows).to_have_count(2, timeout=10000)
        expect(error_row(page, "ORD-L1").locator(".customer")).to_contain_text("a***@example.com")
        expect(error_row(page, "ORD-L2").locator(".customer")).to_contain_text("g***@example.com")
        expect(error_row(page, "ORD-L1").locator(".customer")).to_contain_text("contact hidden")
        text = page.locator("#errors-table").inner_text()
        for secret in ("ada.l1@example.com", "grace.l2@example.com", "Lovelace", "7946 0958", "555 0100"):
            assert secret not in text
        assert page.locator('#errors-table a[href^="mailto:"], #errors-table a[href^="tel:"]').count() == 0
        assert "ada.l1@example.com" not in page.content()
    finally:
        ctx.close()


def test_a_slow_unfiltered_error_list_does_not_replace_the_filtered_one(stack, seeded, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = ctx.new_page()
    held = []

    def hold_unfiltered(route):
        if "method=" not in route.request.url:
            held.append(route)  # the tab's first load: answered after the filtered list is shown
        else:
            route.continue_()

    try:
        sign_in(page, f"{stack.api.url}/dashboard", stack.sellers[SELLER][1])
        page.route("**/payment-errors?*", hold_unfiltered)
        page.get_by_role("tab", name="Payment errors").click()
        filters = page.locator("#error-filters")
        filters.get_by_label("Method", exact=True).fill("wallet")
        filters.get_by_role("button", name="Apply").click()
        rows = page.locator("#errors-table tbody tr")
        expect(rows).to_have_count(1, timeout=10000)
        assert held, "the unfiltered list was never asked for"
        for route in held:
            route.continue_()
        page.wait_for_load_state("networkidle")
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("grace.l2@example.com")
        expect(page.locator("#errors-msg")).to_have_text("1 failed payments shown")
    finally:
        ctx.close()


def test_admin_picks_and_switches_the_seller(stack, seeded, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = ctx.new_page()
    try:
        page.goto(f"{stack.api.url}/dashboard")
        page.get_by_label("Read token").fill(stack.settings.admin_token.get_secret_value())
        page.get_by_role("button", name="Open dashboard").click()
        pick = page.get_by_label("Seller to watch (admin token)")
        expect(pick).to_be_visible()
        assert {SELLER, "warmup"} <= set(pick.locator("option").all_inner_texts())
        pick.select_option(SELLER)
        page.get_by_role("button", name="Open dashboard").click()
        page.wait_for_selector('#conn[data-state="live"]', timeout=15000)
        assert page.title().startswith(f"{SELLER}:")
        page.get_by_role("tab", name="Payment errors").click()
        expect(page.locator("#errors-table tbody tr")).to_have_count(2, timeout=10000)
        expect(page.locator("#errors-table")).to_contain_text("ada.l1@example.com")  # the admin reads PII

        switch = page.locator("#app").get_by_label("Seller", exact=True)
        expect(switch).to_have_value(SELLER)
        switch.select_option("warmup")
        page.wait_for_function("() => document.title.startsWith('warmup:')", timeout=10000)
        page.wait_for_selector('#conn[data-state="live"]', timeout=15000)
        expect(page.locator("#app").get_by_label("Seller", exact=True)).to_have_value("warmup")
        expect(page.get_by_role("tab", name="Payment errors")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#errors-msg")).to_have_text("No failed payments match.", timeout=10000)
        # The warm-up page view reached the live numbers of the seller now shown.
        page.get_by_role("tab", name="Live").click()
        assert int(page.get_attribute("#card-active .value", "data-value") or 0) >= 1
    finally:
        ctx.close()


def axe(page: Page, url: str) -> list[dict]:
    """WCAG 2.1 A/AA violations axe-core finds on the page as it is now."""
    assert page.evaluate("() => !!window.axe"), "axe-core was not injected into this context"
    res = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations.map((v) =>
        ({id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5)}))""")
    return res


def test_accessibility_axe_keyboard_and_live_regions(stack, seeded, browser):
    api = stack.api.url
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    ctx.add_init_script(path=str(AXE))
    page = ctx.new_page()
    try:
        page.goto(f"{api}/dashboard")
        assert axe(page, api) == []  # the sign-in form
        page.get_by_label("Read token").fill(stack.sellers[SELLER][1])
        page.get_by_role("button", name="Open dashboard").click()
        page.wait_for_selector('#conn[data-state="live"]', timeout=15000)
        assert axe(page, api) == []

        # Keyboard: the selected tab is the one Tab reaches; arrows, Home and End move between tabs.
        live_tab = page.get_by_role("tab", name="Live")
        live_tab.focus()
        page.keyboard.press("ArrowRight")
        expect(page.get_by_role("tab", name="Payment errors")).to_be_focused()
        expect(page.get_by_role("tabpanel", name="Payment errors")).to_be_visible()
        expect(page.locator("#errors-table tbody tr")).to_have_count(2, timeout=10000)
        assert axe(page, api) == []
        page.keyboard.press("End")
        expect(page.get_by_role("tab", name="Settings")).to_be_focused()  # the last tab
        page.keyboard.press("ArrowLeft")
        expect(page.get_by_role("tab", name="History")).to_be_focused()
        expect(page.locator("#report-hourly")).to_be_visible(timeout=15000)
        for summary in page.locator("#reports summary").all():
            summary.focus()
            page.keyboard.press("Enter")  # the data tables open from the keyboard
        expect(page.get_by_role("table", name="Payment-method success rate")).to_be_visible()
        assert axe(page, api) == []
        page.set_viewport_size({"width": 390, "height": 844})
        assert axe(page, api) == []
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("tab", name="History").focus()
        page.keyboard.press("Home")
        expect(page.get_by_role("tab", name="Live")).to_have_attribute("aria-selected", "true")

        snapshot = page.locator("#app").aria_snapshot()
        for role in ('tablist "Dashboard sections"', 'tab "Live" [selected]', "status"):
            assert role in snapshot, snapshot
    finally:
        ctx.close()

    # Toasts are announced (assertive live region) and readable; the dismiss button has a name. Another
    # seller, so that the history seeded above stays as it is.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    ctx.add_init_script(path=str(AXE))
    page = ctx.new_page()
    try:
        browser_key, token = stack.sellers["a11y"]
        stack.wait_keys(token)
        sign_in(page, f"{api}/dashboard", token)
        region = page.get_by_role("region", name="New alerts")
        assert region.get_attribute("aria-live") == "assertive"
        r = stack.post(
            browser_key,
            f.payment_failed(
                customer=f.customer(email="toast.a11y@example.com"), session_id=f"sess-{uuid.uuid4().hex[:12]}"
            ),
        )
        assert r.status_code == 202
        toast = region.locator(".toast", has_text="toast.a11y@example.com")
        toast.wait_for(timeout=5000)
        assert axe(page, api) == []
        toast.get_by_role("button", name="Dismiss alert").click()
        expect(toast).to_have_count(0)
    finally:
        ctx.close()
