"""Tokens stay out of URLs (docs/security.md, Tokens in URLs), against a real broker and two API replicas:
REST refuses `?token=` and never logs it; the dashboard's WebSocket opens with a ticket from
POST /v1/ws-tickets that is bound to its token and seller, works on any replica, once per replica,
not after its token is revoked, and a full ticket book answers 503."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import msgspec
import pytest
import websockets

from api.main import create_api
from livemetrics import keys
from livemetrics.keys import KeyRegistry
from tests.support.servers import ThreadServer, wait_until
from tests.support.stack import module_settings, new_seller

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(kafka, clickhouse_dsn, tmp_path_factory):
    s = module_settings(kafka, clickhouse_dsn, tmp_path_factory.mktemp("tickets"))
    tokens = {seller: new_seller(s, seller)[1] for seller in ("shop-a", "shop-b")}
    registry = KeyRegistry(s).start()
    servers = []
    try:
        for token in tokens.values():
            wait_until(lambda t=token: registry.record(t.split("_")[2]) is not None, 15, what="keys loaded")
        # two replicas, one tiny book, one with a tiny share per token
        for settings in (
            s,
            s,
            s.model_copy(update={"ws_ticket_cap": 2}),
            s.model_copy(update={"ws_ticket_cap": 5, "ws_tickets_per_token": 2}),
        ):
            servers.append(ThreadServer(create_api(settings, registry, run_sink=False)).start())
        yield {
            "settings": s,
            "registry": registry,
            "tokens": tokens,
            "one": servers[0].url,
            "two": servers[1].url,
            "capped": servers[2].url,
            "shared": servers[3].url,
        }
    finally:
        for server in servers:
            server.stop()
        registry.stop()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def new_ticket(api: str, token: str, seller: str) -> httpx.Response:
    return httpx.post(f"{api}/v1/ws-tickets", json={"seller_id": seller}, headers=bearer(token), timeout=10)


def open_ws(api: str, path: str, **kw) -> tuple[str, object]:
    """("data", first message) once the socket opened, else ("refused", HTTP status of the handshake)."""

    async def go():
        try:
            async with websockets.connect(api.replace("http", "ws", 1) + path, open_timeout=10, **kw) as ws:
                return "data", json.loads(await asyncio.wait_for(ws.recv(), 10))
        except websockets.InvalidStatus as exc:
            return "refused", exc.response.status_code

    return asyncio.run(go())


def refusal_reasons(caplog) -> list[str]:
    return [r.reason for r in caplog.records if r.name == "livemetrics.api.ws" and r.getMessage() == "ws refused"]


def test_rest_refuses_a_token_in_the_url_and_never_logs_it(env, caplog):
    api, token = env["one"], env["tokens"]["shop-a"]
    with caplog.at_level(logging.INFO, logger="livemetrics.api.http"):
        for path in ("/v1/sellers/shop-a/live", "/v1/me", "/v1/sellers/shop-a/alerts"):
            alone = httpx.get(f"{api}{path}", params={"token": token}, timeout=10)
            both = httpx.get(f"{api}{path}", params={"token": token}, headers=bearer(token), timeout=10)
            for r in (alone, both):  # refused, not ignored: an old client learns why at once
                assert r.status_code == 401, f"{path}: {r.status_code} {r.text}"
                assert "Authorization: Bearer" in r.json()["detail"] and token not in r.text
            assert httpx.get(f"{api}{path}", headers=bearer(token), timeout=10).status_code == 200
    lines = [r for r in caplog.records if r.name == "livemetrics.api.http"]
    assert {r.path for r in lines} >= {"/v1/sellers/shop-a/live", "/v1/me"}  # the path, no query string
    secret = token.split("_", 3)[3]
    assert lines and not any(secret in json.dumps(vars(r), default=str) for r in lines)


def test_a_ticket_opens_its_sellers_socket_once(env, caplog):
    api, token = env["one"], env["tokens"]["shop-a"]
    r = new_ticket(api, token, "shop-a")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_in_s"] == 30 and body["ws_path"] == f"/v1/sellers/shop-a/live/ws?ticket={body['ticket']}"
    assert token.split("_", 3)[3] not in body["ticket"]
    outcome, first = open_ws(api, body["ws_path"])
    assert outcome == "data" and first["type"] == "snapshot" and first["data"]["seller_id"] == "shop-a"
    with caplog.at_level(logging.INFO, logger="livemetrics.api.ws"):
        assert open_ws(api, body["ws_path"]) == ("refused", 403)
    assert any("already used" in reason for reason in refusal_reasons(caplog))


def test_a_ticket_is_bound_to_its_token_and_seller(env, caplog):
    api, ta = env["one"], env["tokens"]["shop-a"]
    r = new_ticket(api, ta, "shop-b")
    assert r.status_code == 404 and "ticket" not in r.json()
    assert httpx.post(f"{api}/v1/ws-tickets", json={"seller_id": "shop-a"}, timeout=10).status_code == 401
    assert (
        httpx.post(f"{api}/v1/ws-tickets", params={"token": ta}, json={"seller_id": "shop-a"}, timeout=10).status_code
        == 401
    )
    ticket = new_ticket(api, ta, "shop-a").json()["ticket"]
    tampered = ticket[:-3] + ("AAA" if not ticket.endswith("AAA") else "BBB")
    with caplog.at_level(logging.INFO, logger="livemetrics.api.ws"):
        assert open_ws(api, f"/v1/sellers/shop-b/live/ws?ticket={ticket}") == ("refused", 403)
        assert open_ws(api, f"/v1/sellers/shop-a/live/ws?ticket={tampered}") == ("refused", 403)
        assert open_ws(api, f"/v1/sellers/shop-a/live/ws?token={ta}") == ("refused", 403)
    other_seller, forged, url_token = refusal_reasons(caplog)[-3:]
    assert other_seller == "no such seller for this ticket" and forged == "invalid WebSocket ticket"
    assert "Authorization: Bearer" in url_token and "/v1/ws-tickets" in url_token
    # The refusal on another seller's path did not use the ticket up; a header still works for non-browsers.
    assert open_ws(api, f"/v1/sellers/shop-a/live/ws?ticket={ticket}")[0] == "data"
    assert open_ws(api, "/v1/sellers/shop-a/live/ws", additional_headers=bearer(ta))[0] == "data"


def test_the_admin_gets_tickets_for_any_seller(env):
    admin = env["settings"].admin_token.get_secret_value()
    r = new_ticket(env["one"], admin, "shop-b")
    assert r.status_code == 201
    outcome, first = open_ws(env["one"], r.json()["ws_path"])
    assert outcome == "data" and first["data"]["seller_id"] == "shop-b"


def test_a_ticket_works_on_another_replica_once(env):
    token = env["tokens"]["shop-b"]
    path = new_ticket(env["one"], token, "shop-b").json()["ws_path"]
    assert open_ws(env["two"], path)[0] == "data"
    assert open_ws(env["two"], path) == ("refused", 403)


def test_an_unused_ticket_dies_with_its_revoked_token(env, caplog):
    s, registry = env["settings"], env["registry"]
    token, rec = keys.new_key("st", "shop-a", label="to revoke")
    keys.publish(s, rec)
    wait_until(lambda: registry.authenticate_id(rec.key_id) is not None, 15, what="token loaded")
    path = new_ticket(env["one"], token, "shop-a").json()["ws_path"]
    keys.publish(s, msgspec.structs.replace(rec, revoked=True))
    wait_until(lambda: registry.authenticate_id(rec.key_id) is None, 15, what="revocation seen")
    with caplog.at_level(logging.INFO, logger="livemetrics.api.ws"):
        assert open_ws(env["one"], path) == ("refused", 403)
    assert "expired or revoked" in refusal_reasons(caplog)[-1]


def test_one_token_cannot_take_the_whole_book(env):
    mine, other, api = env["tokens"]["shop-a"], env["tokens"]["shop-b"], env["shared"]
    assert [new_ticket(api, mine, "shop-a").status_code for _ in range(2)] == [201, 201]
    r = new_ticket(api, mine, "shop-a")
    assert r.status_code == 429 and r.headers["retry-after"] == "5" and "this token holds 2" in r.json()["detail"]
    assert [new_ticket(api, other, "shop-b").status_code for _ in range(2)] == [201, 201]  # another token's share


def test_a_full_ticket_book_answers_503(env):
    token, api = env["tokens"]["shop-a"], env["capped"]
    assert [new_ticket(api, token, "shop-a").status_code for _ in range(2)] == [201, 201]
    r = new_ticket(api, token, "shop-a")
    assert r.status_code == 503 and r.headers["retry-after"] == "5" and "too many" in r.json()["detail"]
    assert new_ticket(env["one"], token, "shop-a").status_code == 201  # per process: the others still issue
