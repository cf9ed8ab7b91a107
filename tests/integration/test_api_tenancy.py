"""Forged requests: seller A's token with seller B's id, on every REST route and on the WebSocket, with
the id in the path, the query and the body. Every one gets 403/404 and none carries B's data."""

from __future__ import annotations

import asyncio
import itertools
import re
from urllib.parse import unquote

import httpx
import pytest
import websockets

from tests.support import factories as f
from tests.support.servers import get_json, wait_until
from tests.support.stack import Stack, module_settings, new_seller

pytestmark = pytest.mark.integration

# Markers that exist only in seller B's data: no response to A's token may contain any of them.
B_MARKERS = ("b-secret-cat", "b-secret-offer", "bob.secret@b.example", "ORD-B-SECRET", "+99 555 0101")
REPORTS = ("hourly", "categories", "offers", "funnel", "payment-methods", "error-trends")
# Ways of writing B's id in a path that a sloppy check (prefix, case, decoding) might let through.
B_IDS = (
    "seller-b",
    "SELLER-B",
    "seller-b ",
    "seller%2Db",
    "seller-b%00",
    "seller-a%2F..%2Fseller-b",
    "seller-b/",
    "%20seller-b",
)


@pytest.fixture(scope="module")
def stack(kafka, clickhouse_dsn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tenancy")
    s = module_settings(kafka, clickhouse_dsn, tmp)
    sellers = {seller: new_seller(s, seller) for seller in ("seller-a", "seller-b", "warmup")}
    st = Stack(s, tmp, sellers)
    try:
        st.warm_up()
        seed(st)
        yield st
    finally:
        st.close()


def seed(st: Stack) -> None:
    """Both sellers get live numbers, an alert and ClickHouse rows; B's carry the markers."""
    (ka, ta), (kb, tb) = st.sellers["seller-a"], st.sellers["seller-b"]
    cust_b = f.customer(email="bob.secret@b.example", phone="+99 555 0101", name="Bob Secret")
    sb = "sess-b-000001"
    b_events = [
        f.page_view("category", category="b-secret-cat"),
        f.page_view("offer", offer_id="b-secret-offer"),
        f.checkout_started(session_id=sb, customer=cust_b),
        f.payment_failed(session_id=sb, customer=cust_b, payment_overrides={"order_id": "ORD-B-SECRET"}),
    ]
    a_events = [f.page_view(), f.page_view("category", category="lamps"), f.payment_failed()]
    assert st.post(kb, {"events": b_events}).json()["accepted"] == 4
    assert st.post(ka, {"events": a_events}).json()["accepted"] == 3
    # Positive control: B's data really is in the API, so the forged requests below could leak it.
    wait_until(lambda: "b-secret-cat" in str(st.live("seller-b", tb)["live"]["category"]), 20, what="B live")
    wait_until(lambda: get_json(f"{st.api.url}/v1/sellers/seller-b/alerts", tb)["items"], 20, what="B alert")
    wait_until(
        lambda: get_json(f"{st.api.url}/v1/sellers/seller-b/reports/hourly", tb)["rows"],
        30,
        interval=0.3,
        what="B rows in ClickHouse",
    )
    wait_until(lambda: st.live("seller-a", ta)["live"]["home"] >= 1, 20, what="A live")


def seller_routes(app) -> list[tuple[str, str]]:
    """Every (method, path template) of the published OpenAPI that takes a seller id: new routes are
    covered as soon as they exist."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        if "{seller_id}" in path:
            out += [(m.upper(), path) for m in ops if m.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    return out


def fill(path: str, seller: str) -> str:
    path = path.replace("{seller_id}", seller)
    path = path.replace("{report}", "hourly").replace("{alert_id}", "x")
    return re.sub(r"\{[^}]+\}", "x", path)


def no_b_data(r: httpx.Response) -> None:
    for marker in B_MARKERS:
        assert marker.lower() not in r.text.lower(), f"{r.request.method} {r.request.url} leaked {marker!r}"


def test_forged_rest_requests_are_refused_and_leak_nothing(stack):
    api = stack.api
    ta = stack.sellers["seller-a"][1]
    routes = seller_routes(api_app(stack))
    assert ("GET", "/v1/sellers/{seller_id}/live") in routes
    paths = [(m, fill(p, "seller-b")) for m, p in routes]
    # Every report by name (the route template covers them with one placeholder).
    paths += [("GET", f"/v1/sellers/seller-b/reports/{rep}") for rep in REPORTS]
    paths += [("GET", "/v1/sellers/seller-b/payment-errors"), ("POST", "/v1/sellers/seller-b/payment-errors/x/status")]
    sent = 0
    with httpx.Client(base_url=api.url, timeout=15) as c:
        for (method, path), b_id in itertools.product(paths, B_IDS):
            path = path.replace("/seller-b/", f"/{b_id}/", 1) if b_id != "seller-b" else path
            body = {"status": "resolved", "note": "x", "seller_id": "seller-b"} if method == "POST" else None
            r = c.request(method, path, headers={"Authorization": f"Bearer {ta}"}, json=body)
            sent += 1
            assert r.status_code in (403, 404, 405), f"{method} {path} -> {r.status_code} {r.text[:200]}"
            no_b_data(r)
            # A token in the query string is refused outright (it would land in access logs).
            r = c.request(method, path, params={"token": ta}, json=body)
            sent += 1
            no_route = r.status_code in (404, 405) and r.json().get("detail") in ("Not Found", "Method Not Allowed")
            assert r.status_code == 401 or no_route, f"{method} {path} (?token=) -> {r.status_code} {r.text[:200]}"
            no_b_data(r)
        # A's token asking for a WebSocket ticket to B's live view, under every spelling of B's id.
        for b_id in sorted({*B_IDS, *map(unquote, B_IDS)}):
            r = c.post("/v1/ws-tickets", json={"seller_id": b_id}, headers={"Authorization": f"Bearer {ta}"})
            sent += 1
            assert r.status_code == 404 and "ticket" not in r.json(), f"ticket for {b_id!r} -> {r.status_code}"
        # B's id in the query string and the body of A's own routes: A's data or a refusal, never B's.
        for method, tmpl in routes:
            path = fill(tmpl, "seller-a")
            for q in (
                {"seller_id": "seller-b"},
                {"seller": "seller-b"},
                {"category": "b-secret-cat"},
                {"error_code": "card_declined", "seller_id": "seller-b"},
            ):
                body = {"status": "contacted", "seller_id": "seller-b"} if method == "POST" else None
                r = c.request(method, path, headers={"Authorization": f"Bearer {ta}"}, params=q, json=body)
                sent += 1
                assert r.status_code < 500, f"{method} {path} {q} -> {r.status_code}"
                no_b_data(r)
        # A's path with B's alert id in the path: a POST to B's alert through A's route is refused.
        b_alert = get_json(f"{api.url}/v1/sellers/seller-b/alerts", stack.sellers["seller-b"][1])["items"][0][
            "alert_id"
        ]
        for method, tmpl in routes:
            if "{alert_id}" in tmpl:
                r = c.request(
                    method,
                    tmpl.replace("{seller_id}", "seller-a").replace("{alert_id}", b_alert),
                    headers={"Authorization": f"Bearer {ta}"},
                    json={"status": "resolved"},
                )
                sent += 1
                assert r.status_code in (403, 404), f"{method} B's alert via A's path -> {r.status_code}"
                no_b_data(r)
    assert sent >= 200, sent
    # And the positive controls: A reads its own seller through the very same routes.
    assert get_json(f"{api.url}/v1/sellers/seller-a/live", ta)["live"]["home"] >= 1


def api_app(stack):
    return stack.api.server.config.app


def test_forged_websockets_are_refused_before_any_data(stack):
    ta = stack.sellers["seller-a"][1]
    base = stack.api.url.replace("http", "ws")

    async def attempt(path: str, **kw) -> tuple[str, str]:
        try:
            async with websockets.connect(base + path, open_timeout=10, **kw) as ws:
                try:
                    msg = await asyncio.wait_for(ws.recv(), 3)
                except websockets.ConnectionClosed as exc:
                    return "closed", str(exc.rcvd.code if exc.rcvd else "")
                return "data", msg
        except websockets.InvalidStatus as exc:
            return "refused", str(exc.response.status_code)

    def a_ticket() -> str:  # seller A's own ticket, tried on B's paths
        r = httpx.post(
            f"{stack.api.url}/v1/ws-tickets",
            json={"seller_id": "seller-a"},
            headers={"Authorization": f"Bearer {ta}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return r.json()["ticket"]

    async def all_attempts():
        out = []
        for b_id in B_IDS:
            out.append((b_id, await attempt(f"/v1/sellers/{b_id}/live/ws?token={ta}")))
            out.append(
                (
                    b_id,
                    await attempt(f"/v1/sellers/{b_id}/live/ws", additional_headers={"Authorization": f"Bearer {ta}"}),
                )
            )
            out.append((b_id, await attempt(f"/v1/sellers/{b_id}/live/ws?ticket={a_ticket()}")))
        return out

    results = asyncio.run(all_attempts())
    assert len(results) == 3 * len(B_IDS)
    for b_id, (outcome, detail) in results:
        assert outcome in ("closed", "refused"), f"{b_id}: got {detail[:200]}"
        for marker in B_MARKERS:
            assert marker not in detail


def test_seller_list_names_only_the_tokens_own_seller_and_all_for_the_admin(stack):
    api, ta = stack.api.url, stack.sellers["seller-a"][1]
    for params in ({}, {"seller_id": "seller-b"}, {"seller": "seller-b"}):
        r = httpx.get(f"{api}/v1/sellers", params=params, headers={"Authorization": f"Bearer {ta}"}, timeout=10)
        assert r.status_code == 200 and r.json() == {"sellers": ["seller-a"]}, r.text
    admin = stack.settings.admin_token.get_secret_value()
    assert {"seller-a", "seller-b", "warmup"} <= set(get_json(f"{api}/v1/sellers", admin)["sellers"])
    assert httpx.get(f"{api}/v1/sellers", timeout=10).status_code == 401
