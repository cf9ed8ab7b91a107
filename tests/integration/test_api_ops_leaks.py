"""What the API answers without a token, and what its errors say (docs/security.md, Network): after
traffic from a seller and the admin, /metrics, /healthz, /readyz and /openapi.json name no seller, no
key id, no token or secret, and refusals and errors do not echo the credentials they refuse. A running
API (real Kafka key registry, chdb)."""

from __future__ import annotations

import httpx
import pytest

from api.main import create_api
from clickhouse.migrate import migrate
from livemetrics.keys import KeyRegistry
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration
SELLER = "shop-secret-7"


def test_ops_endpoints_and_errors_leak_no_seller_key_or_secret(make_settings, add_seller):
    s = make_settings()
    browser_key, token = add_seller(s, SELLER)
    other = add_seller(s, "shop-other")[1]
    migrate(s)
    registry = KeyRegistry(s).start()
    server = ThreadServer(create_api(s, registry, run_sink=False)).start()
    wait_until(lambda: registry.authenticate(token, ("token",)), 15, what="token loaded")
    admin = s.admin_token.get_secret_value()
    secrets = [
        SELLER,
        token,
        token.split("_")[2],  # the key id
        other,
        browser_key,
        admin,
        s.key_encryption_key.get_secret_value(),
        s.ip_hash_secret.get_secret_value(),
    ]
    errors = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for who in (token, admin):  # traffic first: what the ops endpoints could count or name
                h = {"Authorization": f"Bearer {who}"}
                assert c.get(f"/v1/sellers/{SELLER}/live", headers=h).status_code == 200
                assert c.get(f"/v1/sellers/{SELLER}/reports/hourly", headers=h).status_code == 200
                assert c.post("/v1/ws-tickets", json={"seller_id": SELLER}, headers=h).status_code == 201
            errors += [
                c.get(f"/v1/sellers/{SELLER}/live", headers={"Authorization": f"Bearer {other}"}),  # 404
                c.get(f"/v1/sellers/{SELLER}/live", headers={"Authorization": f"Bearer {browser_key}"}),  # 401
                c.get(f"/v1/sellers/{SELLER}/live", params={"token": token}),  # 401, in the URL
                c.get(f"/v1/sellers/{SELLER}/live", headers={"Authorization": f"Bearer {admin}x"}),  # 401
                c.post("/v1/admin/erase", json={"email": "a@b.example"}, headers={"Authorization": f"Bearer {token}"}),
                c.post("/v1/admin/erase", json={"email": "a@b.example"}, headers={"Authorization": f"Basic {admin}"}),
            ]
            assert [r.status_code for r in errors] == [404, 401, 401, 401, 403, 401]
            public = [c.get(p) for p in ("/metrics", "/healthz", "/readyz", "/openapi.json")]
            # /readyz may be 503 here (no live-metrics topic to follow): its body is what counts.
            assert [r.status_code for r in public] in ([200, 200, 200, 200], [200, 200, 503, 200])
    finally:
        server.stop()
        registry.stop()
    for r in public + errors:
        for secret in secrets:
            assert secret not in r.text, (r.request.url.path, secret[:12])
        assert "Traceback" not in r.text
