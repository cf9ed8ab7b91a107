"""``/docs`` of the gateway and the API: Swagger UI from one pinned release on jsDelivr, each file with
its Subresource Integrity hash.

FastAPI's own page loads ``swagger-ui-dist@5`` (whatever 5.x the CDN serves that day) without a hash, and
a token pasted into its Authorize box is readable by that script. With the release pinned and hashed, a
browser refuses a file the CDN changed instead of running it (docs/security.md). To move to another
release: set ``VERSION`` and the two hashes of its npm package's files (tests/unit/test_swagger_ui.py
checks them against the package from the npm registry).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

VERSION = "5.36.0"
JS_URL = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{VERSION}/swagger-ui-bundle.js"
CSS_URL = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{VERSION}/swagger-ui.css"
# sha384 of package/swagger-ui-bundle.js and package/swagger-ui.css in swagger-ui-dist-5.36.0.tgz
JS_SRI = "sha384-fUpRgC19yPykTqzdrUbdAg8NTiu16NEKf9U12J+IJWCg8/1mEI8f2+PEIz60Wyd+"
CSS_SRI = "sha384-z/AtSaOHGn5MJ5auAHXUypohywlIWLBZo1jeGmhdpVIbCnFhxAH92cwdV41oyINc"


def page(openapi_url: str, title: str) -> str:
    """FastAPI's Swagger UI page with the pinned files, each tag carrying its hash."""
    html = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=JS_URL,
        swagger_css_url=CSS_URL,
        swagger_favicon_url="data:,",  # no request to a third host (FastAPI's default is its own site)
    ).body.decode()
    tags = {
        f'<script src="{JS_URL}">': f'<script src="{JS_URL}" integrity="{JS_SRI}" crossorigin="anonymous">',
        f'href="{CSS_URL}">': f'href="{CSS_URL}" integrity="{CSS_SRI}" crossorigin="anonymous">',
    }
    for tag, hashed in tags.items():
        if html.count(tag) != 1:  # FastAPI changed its page: serve none rather than an unhashed script
            raise RuntimeError(f"Swagger UI page: expected one {tag!r}")
        html = html.replace(tag, hashed)
    return html


def serve(app: FastAPI, title: str) -> None:
    """Add ``GET /docs`` (the app must be made with ``docs_url=None``)."""
    html = page(app.openapi_url or "/openapi.json", title)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html)
