"""Browser keys' origins (livemetrics/origins.py) and the `sellers add|update` key options
(operations/key_options.py): canonical forms, what a request's Origin/Referer names, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemetrics.origins import normalize_origin, request_origin
from operations.key_options import EVENT_TYPES, key_limits, parse_event_types, parse_origins


@pytest.mark.parametrize(
    "text,origin",
    [
        ("https://shop.example", "https://shop.example"),
        ("https://Shop.Example/", "https://shop.example"),
        ("HTTPS://shop.example:443", "https://shop.example"),
        ("http://shop.example:80", "http://shop.example"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://shop.example:8443", "https://shop.example:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        (" https://www.shop.example ", "https://www.shop.example"),
    ],
)
def test_origins_are_canonical(text, origin):
    assert normalize_origin(text) == origin


@pytest.mark.parametrize(
    "text,says",
    [
        ("shop.example", "must start with https://"),
        ("ftp://shop.example", "must start with https://"),
        ("https://", "has no host name"),
        ("https://shop.example/checkout", "without a path, query or user"),
        ("https://shop.example/?a=1", "without a path, query or user"),
        ("https://user@shop.example", "without a path, query or user"),
        ("https://*.shop.example", "wildcards are not supported"),
        ("https://shop.example:99999", "is not a URL"),
    ],
)
def test_a_bad_origin_is_refused_naming_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says) as err:
        normalize_origin(text)
    assert repr(text) in str(err.value)


def test_the_origin_header_wins_else_the_referer_names_it():
    assert request_origin("https://shop.example", "https://evil.example/x") == "https://shop.example"
    assert request_origin(None, "https://Shop.example:443/checkout?step=2#pay") == "https://shop.example"
    assert request_origin("null", None) is None  # a sandboxed frame or a file:// page
    assert request_origin("null", "https://shop.example/") == "https://shop.example"
    assert request_origin(None, None) is None and request_origin("", "") is None
    assert request_origin("garbage", None) is None and request_origin(None, "/relative/path") is None
    assert request_origin(None, "https://user:pw@shop.example/") == "https://shop.example"


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    port=st.none() | st.integers(1, 65535),
    path=st.from_regex(r"(/[a-zA-Z0-9._-]{0,8}){0,3}(\?[a-z=&0-9]{0,10})?", fullmatch=True),
)
def test_a_pages_referer_names_the_origin_of_its_site(scheme, host, port, path):
    site = f"{scheme}://{host}" + (f":{port}" if port else "")
    origin = normalize_origin(site)
    assert normalize_origin(origin) == origin  # canonical is a fixed point
    assert request_origin(None, site + path) == origin
    assert request_origin(site.upper(), None) == origin


def test_sellers_options_parse_into_key_fields():
    assert key_limits(None, None) == {}
    assert key_limits(
        ["https://shop.example/", "https://www.shop.example,https://shop.example"], "page_view, heartbeat,page_view"
    ) == {"origins": ["https://shop.example", "https://www.shop.example"], "event_types": ["page_view", "heartbeat"]}
    assert parse_origins([]) == [] and parse_event_types(None) == []
    assert set(EVENT_TYPES) == {
        "page_view",
        "heartbeat",
        "checkout_started",
        "payment_started",
        "payment_succeeded",
        "payment_failed",
    }


def test_bad_sellers_options_are_named():
    with pytest.raises(ValueError, match="unknown event type 'page_views' in --event-types; known: page_view, "):
        parse_event_types("page_views")
    with pytest.raises(ValueError, match="--event-types is empty"):
        parse_event_types(" , ")
    with pytest.raises(ValueError, match="'shop.example' must start with https://"):
        parse_origins(["shop.example"])
