"""An API process that has not read its tokens yet (started while Kafka is away) answers a token it does
not know 503 with Retry-After, saying so, not 401 "unknown token" (after which a dashboard asks its user for
another token). Once the tokens are read, an unknown token is 401 as before; the admin token works either way."""

from __future__ import annotations

import asyncio

import httpx

from api.deps import KEYS_NOT_READ
from api.main import create_api
from livemetrics.settings import Settings
from tests.support.unread_keys import UnreadKeys

ADMIN = "admin-" + "x" * 40


def answers(ready: bool) -> list[httpx.Response]:
    settings = Settings(admin_token=ADMIN, api_rate_per_s=1000, api_rate_burst=1000)
    app = create_api(settings, None, run_sink=False)
    registry = UnreadKeys()
    registry.ready = ready
    app.state.settings, app.state.registry = settings, registry  # what the lifespan sets

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            token = await client.get("/v1/me", headers={"Authorization": "Bearer lm_st_k1_secret"})
            admin = await client.get("/v1/me", headers={"Authorization": f"Bearer {ADMIN}"})
            return [token, admin]

    return asyncio.run(scenario())


def test_tokens_not_read_yet_is_503_with_retry_after_not_unknown_token():
    token, admin = answers(ready=False)
    assert token.status_code == 503 and token.headers["Retry-After"] == "5"
    assert token.json() == {"detail": KEYS_NOT_READ}
    assert admin.status_code == 200 and admin.json()["admin"] is True
    token, admin = answers(ready=True)
    assert token.status_code == 401 and token.json() == {"detail": "unknown, expired or revoked token"}


def test_the_openapi_documents_the_503_on_token_routes():
    doc = create_api(Settings(), None, run_sink=False).openapi()
    assert "503" in doc["paths"]["/v1/me"]["get"]["responses"]
    assert "503" in doc["paths"]["/v1/sellers/{seller_id}/live"]["get"]["responses"]
