"""Odd parameters against a running API (real Kafka key registry, chdb): time zones Python can load but
ClickHouse cannot, or that are not time zones at all, and instants outside what a report can cover. Each
is a 422 that names the parameter, never a 500 (docs/security.md, Smaller guards)."""

from __future__ import annotations

import httpx
import pytest

from api.main import create_api
from clickhouse.migrate import migrate
from livemetrics.keys import KeyRegistry
from tests.support.servers import ThreadServer, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(kafka, clickhouse_dsn, tmp_path_factory):
    from tests.support.stack import module_settings, new_seller

    s = module_settings(kafka, clickhouse_dsn, tmp_path_factory.mktemp("odd"), api_rate_per_s=1000, api_rate_burst=1000)
    token = new_seller(s, "shop-a")[1]
    migrate(s)
    registry = KeyRegistry(s).start()
    server = ThreadServer(create_api(s, registry, run_sink=False)).start()
    wait_until(lambda: registry.authenticate(token, ("token",)), 15, what="token loaded")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client
    server.stop()
    registry.stop()


# Loadable by Python's zoneinfo, unknown to ClickHouse (leap-second zones), or not a zone name at all.
ODD_ZONES = ["right/UTC", "right/Europe/Berlin", "a" * 300, "Europe/" + "x" * 5000, "UTC\n", "../UTC"]


@pytest.mark.parametrize("tz", ODD_ZONES, ids=range(len(ODD_ZONES)))
@pytest.mark.parametrize("report", ["hourly", "funnel"])
def test_a_time_zone_clickhouse_does_not_know_is_a_422_naming_it(api, report, tz):
    r = api.get(f"/v1/sellers/shop-a/reports/{report}", params={"tz": tz, "from": "2026-01-01", "to": "2026-01-02"})
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert r.json()["detail"].startswith("unknown time zone"), r.text[:300]


def test_every_time_zone_the_openapi_lists_gives_a_report(api):
    zones = api.get("/openapi.json").json()["paths"]["/v1/sellers/{seller_id}/reports/{report}"]["get"]["parameters"]
    listed = next(p for p in zones if p["name"] == "tz")["schema"]["enum"]
    assert "Europe/Berlin" in listed and "right/UTC" not in listed
    for tz in listed[::40] + ["Factory", "EST5EDT"]:
        r = api.get("/v1/sellers/shop-a/reports/hourly", params={"tz": tz, "from": "2026-01-01", "to": "2026-01-02"})
        assert r.status_code == 200, (tz, r.text[:300])


RANGES = [
    ("0001-01-01T00:00:00+01:00", "0001-01-02"),  # before year 1 in UTC: Python cannot even convert it
    ("9999-12-31", "9999-12-31T23:00:00-05:00"),  # after year 9999 in UTC
    ("1800-01-01", "1800-01-02"),  # before ClickHouse's DateTime64 (1900)
    ("2400-01-01", "2400-01-02"),  # after it (2299)
]


@pytest.mark.parametrize(("start", "end"), RANGES)
@pytest.mark.parametrize("path", ["reports/hourly", "reports/funnel", "payment-errors"])
def test_instants_outside_what_is_stored_are_a_422_naming_the_parameter(api, path, start, end):
    r = api.get(f"/v1/sellers/shop-a/{path}", params={"from": start, "to": end})
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert "between 1900-01-01 and 2299-12-31" in r.json()["detail"], r.text


def test_the_edges_of_the_stored_range_are_answered(api):
    # An offset takes the instant past either end in UTC: ClickHouse clamps it, no 500.
    for start, end in (
        ("1900-01-01", "1900-01-03"),
        ("1900-01-01T00:00:00+05:00", "1900-01-01T12:00:00+05:00"),
        ("", "1900-01-02"),  # the default `from`, 7 days before: 1899
        ("2299-12-29", "2299-12-31T23:59:59"),
        ("2299-12-31T20:00:00-05:00", "2299-12-31T23:59:59-05:00"),
    ):
        for path in ("reports/hourly", "payment-errors"):
            r = api.get(f"/v1/sellers/shop-a/{path}", params={"from": start, "to": end})
            assert r.status_code == 200, (path, start, r.text[:300])


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Cursors no API handed out: JSON nested deeper than the decoder's recursion limit (RecursionError, not a
# ValueError: a 500 for any token holder, before), a number over int()'s 4,300 digits, not base64, not JSON.
ODD_CURSORS = [_b64(b"[" * 5000), _b64(b'{"a":' * 1200), _b64(b"[" + b"9" * 5000 + b', "x"]'), "%%%", _b64(b"\xff\xfe")]


@pytest.mark.parametrize("cursor", ODD_CURSORS, ids=range(len(ODD_CURSORS)))
def test_a_cursor_no_api_handed_out_is_a_422_naming_it(api, cursor):
    r = api.get("/v1/sellers/shop-a/payment-errors", params={"cursor": cursor})
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert "`cursor` is not valid" in r.json()["detail"], r.text[:300]
