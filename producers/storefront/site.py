"""The demo storefront, served by the gateway under ``/demo`` in demo mode.

Its URLs and element ids are a contract with the simulator and the browser tests: docs/ingest.md.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from livemetrics.settings import Settings

HERE = Path(__file__).resolve().parent
CATEGORIES = {"lamps": "Lamps", "chairs": "Chairs", "tables": "Tables"}
PRODUCTS = {
    "SKU-1": ("Brass desk lamp", 39.0, "lamps"),
    "SKU-2": ("Paper floor lamp", 59.0, "lamps"),
    "SKU-3": ("Oak chair", 120.0, "chairs"),
    "SKU-4": ("Folding chair", 25.5, "chairs"),
    "SKU-5": ("Round table", 310.0, "tables"),
    "SKU-6": ("Side table", 89.9, "tables"),
}
OFFERS = {"summer-sale": ("Summer sale: desk lamp -20%", "SKU-1"), "bundle-42": ("Chair bundle", "SKU-3")}
KEY_COOKIE = "lm_demo_key"


def _product_links(cat: str | None = None) -> str:
    return "".join(
        f'<li><a id="product-{sku}" href="/demo/p/{sku}">{html.escape(name)}</a> {price:.2f} EUR</li>'
        for sku, (name, price, c) in PRODUCTS.items()
        if cat is None or c == cat
    )


def _offer_links() -> str:
    return "".join(
        f'<li><a id="offer-{oid}" href="/demo/o/{oid}">{html.escape(t)}</a></li>' for oid, (t, _) in OFFERS.items()
    )


def _buy_box(sku: str) -> str:
    name, price, _ = PRODUCTS[sku]
    return (
        f'<div class="buy" data-sku="{sku}" data-name="{html.escape(name)}" data-price="{price}">'
        f"<p>{html.escape(name)}: {price:.2f} EUR</p>"
        '<button id="add-to-cart">Add to cart</button> <button id="go-checkout">Checkout</button></div>'
    )


def _page(title: str, page: str, main: str, key: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} - Demo shop</title>
<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%23245'/%3E%3Cpath d='M3 11l3-4 3 2 4-5' stroke='%23fff' stroke-width='2' fill='none'/%3E%3C/svg%3E">
<link rel="stylesheet" href="/demo/static/demo.css"></head>
<body data-page="{page}">
<header><a id="nav-home" href="/demo/">Demo shop</a>
<nav>{"".join(f'<a id="nav-cat-{s}" href="/demo/c/{s}">{n}</a>' for s, n in CATEGORIES.items())}
<a id="nav-cart" href="/demo/cart">Cart (<span id="cart-count">0</span>)</a></nav></header>
<main><h1>{html.escape(title)}</h1>{main}</main>
<footer>session <code id="lm-session"></code></footer>
<script src="/t.js" data-key="{html.escape(key)}" data-base="/demo" data-heartbeat="15"></script>
<script src="/demo/static/demo.js"></script>
</body></html>"""


def demo_router(settings: Settings) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def render(request: Request, title: str, page: str, main: str) -> HTMLResponse:
        override = request.query_params.get("key", "")
        key = (
            override if override.startswith("lm_pk_") else request.cookies.get(KEY_COOKIE) or settings.demo_browser_key
        )
        resp = HTMLResponse(_page(title, page, main, key))
        if override.startswith("lm_pk_"):
            resp.set_cookie(KEY_COOKIE, override, samesite="lax", path="/demo")
        return resp

    @router.get("/")
    async def home(request: Request):
        """Demo: home page."""
        cats = "".join(f'<li><a id="cat-{s}" href="/demo/c/{s}">{n}</a></li>' for s, n in CATEGORIES.items())
        return render(
            request, "Home", "home", f"<h2>Categories</h2><ul>{cats}</ul><h2>Offers</h2><ul>{_offer_links()}</ul>"
        )

    @router.get("/c/{slug}")
    async def category(request: Request, slug: str):
        """Demo: a category page."""
        if slug not in CATEGORIES:
            raise HTTPException(404, f"no category {slug!r}")
        return render(
            request,
            CATEGORIES[slug],
            "category",
            f"<ul>{_product_links(slug)}</ul><h2>Offers</h2><ul>{_offer_links()}</ul>",
        )

    @router.get("/o/{offer_id}")
    async def offer(request: Request, offer_id: str):
        """Demo: an offer page."""
        if offer_id not in OFFERS:
            raise HTTPException(404, f"no offer {offer_id!r}")
        title, sku = OFFERS[offer_id]
        return render(request, title, "offer", _buy_box(sku))

    @router.get("/p/{sku}")
    async def product(request: Request, sku: str):
        """Demo: a product page."""
        if sku not in PRODUCTS:
            raise HTTPException(404, f"no product {sku!r}")
        return render(request, PRODUCTS[sku][0], "product", _buy_box(sku))

    @router.get("/cart")
    async def cart(request: Request):
        """Demo: the cart."""
        return render(request, "Cart", "cart", '<ul id="cart-items"></ul><button id="go-checkout">Checkout</button>')

    @router.get("/checkout")
    async def checkout(request: Request):
        """Demo: checkout (sends checkout_started)."""
        form = (
            '<form id="checkout-form"><ul id="cart-items"></ul>'
            '<label>Email <input id="email" type="email" value="ada@example.com"></label>'
            '<label>Phone <input id="phone" value="+44 20 7946 0958"></label>'
            '<label>Name <input id="name" value="Ada Lovelace"></label>'
            '<button id="place-order" type="submit">Place order</button></form>'
        )
        return render(request, "Checkout", "checkout", form)

    @router.get("/payment")
    async def payment(request: Request):
        """Demo: payment (sends payment_started, then succeeded or failed)."""
        opts = "".join(f'<option value="{m}">{m}</option>' for m in ("card", "paypal", "bank_transfer", "wallet"))
        return render(
            request,
            "Payment",
            "payment",
            f'<p>Total <span id="pay-total"></span> EUR</p><select id="pay-method">{opts}</select>'
            '<button id="pay-ok">Pay</button> <button id="pay-fail">Pay (will fail)</button>',
        )

    @router.get("/payment/error")
    async def payment_error(request: Request):
        """Demo: the page after a failed payment."""
        return render(
            request,
            "Payment failed",
            "payment-error",
            '<p>Your payment failed: <code id="error-code"></code></p><button id="retry-payment">Try again</button>',
        )

    @router.get("/thanks")
    async def thanks(request: Request):
        """Demo: order confirmation."""
        return render(request, "Thank you", "thanks", '<p>Order <code id="order-id"></code> is confirmed.</p>')

    @router.get("/static/{name}")
    async def static(name: str):
        """Demo: the storefront's script and style."""
        types = {"demo.js": "application/javascript", "demo.css": "text/css"}
        if name not in types:
            raise HTTPException(404, f"no static file {name!r}")
        return Response((HERE / name).read_bytes(), media_type=types[name])

    return router
