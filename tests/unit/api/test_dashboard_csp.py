"""The dashboard's Content-Security-Policy lets the page open WebSockets to its own host only."""

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.routes import dashboard


def connect_src(policy: str) -> list[str]:
    directive = next(d.strip() for d in policy.split(";") if d.strip().startswith("connect-src"))
    return directive.split()[1:]


def served_policy(host: str) -> str:
    app = FastAPI()
    dashboard.mount(app)
    r = TestClient(app).get("/dashboard/", headers={"Host": host})
    assert r.status_code == 200
    return r.headers["content-security-policy"]


def test_websockets_only_to_the_pages_own_host():
    policy = served_policy("dash.example:8001")
    assert connect_src(policy) == ["'self'", "ws://dash.example:8001", "wss://dash.example:8001"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


@given(st.text(max_size=60))
def test_a_forged_host_header_never_adds_a_source_or_a_directive(host):
    policy = dashboard.csp_for(host)
    sources = connect_src(policy)
    assert sources[0] == "'self'" and all(s in ("'self'", f"ws://{host}", f"wss://{host}") for s in sources)
    assert len(sources) in (1, 3) and policy.count(";") == dashboard.CSP.count(";")
    assert "ws:" not in sources and "wss:" not in sources and "*" not in " ".join(sources)
