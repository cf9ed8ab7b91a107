"""The proxy writes no query string down (docs/security.md, Tokens in URLs): every access log of
deploy/nginx/nginx.conf uses a format built from `$uri`, and WebSocket tickets hash to one API replica."""

from __future__ import annotations

import re
from pathlib import Path

CONF = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "nginx.conf"
# Variables that hold the query string, or a URL that may carry one.
QUERY_VARS = ("$request", "$request_uri", "$args", "$query_string", "$arg_", "$http_referer", "$is_args")


def statements(conf: str) -> list[str]:
    """Each `;`-terminated statement, comments removed and quoted continuations joined."""
    text = re.sub(r"#[^\n]*", "", conf)
    return [" ".join(s.split()) for s in text.split(";") if s.strip()]


def test_every_access_log_uses_a_format_without_the_query_string():
    stmts = statements(CONF.read_text())
    formats = {}
    for s in stmts:
        m = re.search(r"\blog_format (\S+) (.*)$", s)
        if m:
            formats[m.group(1)] = m.group(2)
    logs = [s[s.index("access_log") :] for s in stmts if re.search(r"\baccess_log\b", s)]
    # nginx's default log is `combined`, which has `$request` (with the query): one must be declared.
    assert logs, "no access_log: nginx would log `combined`, query strings included"
    for log in logs:
        parts = log.split()
        assert parts[1] == "off" or (len(parts) >= 3 and parts[2] in formats), f"{log}: not one of our formats"
    for name, fmt in formats.items():
        for var in QUERY_VARS:  # `$request` but not `$request_method`; `$arg_` is a prefix of its own
            pattern = re.escape(var) + ("" if var.endswith("_") else r"(?![a-z_])")
            assert not re.search(pattern, fmt), f"log_format {name} writes {var}"
        assert "$uri" in fmt, f"log_format {name} has no path"
    http_block = CONF.read_text().split("server {")[0]
    assert re.search(r"^\s*access_log \S+ \S+;", http_block, re.M), "the access log is not set for every location"


def test_websockets_hash_on_their_ticket():
    conf = CONF.read_text()
    key = re.search(r"map \$arg_ticket \$(\w+) \{ default \$arg_ticket; \"\" \$request_id; \}", conf)
    assert key, "no hash key taken from the ticket (request id without one)"
    upstream = re.search(r"upstream (\w+) \{[^}]*hash \$" + key.group(1) + r" consistent;", conf)
    assert upstream, "no upstream hashed on the ticket"
    ws_location = re.search(r"location ~ \^/v1/sellers/\[\^/\]\+/live/ws\$ \{([^}]*)\}", conf).group(1)
    assert f"proxy_pass http://{upstream.group(1)};" in ws_location
