"""Headless Chromium (Debian's) leaves a page whose tracker holds a long refusal's 500 events (~95 KB): the
browser takes at most ~64 KiB of beacons and keepalive fetches in flight, so only the first beacon of
the queue goes. What it would not take is kept in localStorage and sent by the next page of the site; every
event arrives, none twice. Before, the rest went by a keepalive fetch the browser refused too (the same
quota) and was lost with the page. For t.js and for the npm package's script-tag build (dist/t.js).

The gateway here is a small recording server of the test's own (the events' wire format, its 503 with
Retry-After, its 202): what is asserted is what left the browser, request by request."""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import tracker_js
from tests.support.servers import wait_until

pytestmark = [pytest.mark.browser]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
T_JS = Path(__file__).resolve().parents[2] / "producers" / "tracker" / "t.js"
PAGE = (
    "<!doctype html><html><head><title>shop</title></head><body><p>{name}</p>"
    '<script src="/t.js" data-key="lm_pk_k1_s" data-heartbeat="3600"></script></body></html>'
)


class Site(http.server.BaseHTTPRequestHandler):
    """The shop's pages and its tracker, and a gateway that refuses (503) or takes (202) events."""

    script: bytes
    taking: bool
    taken: list[dict]  # the events of every request answered 202, in arrival order
    refused: int

    def do_GET(self):
        if self.path == "/t.js":
            body, kind = self.script, "application/javascript"
        else:
            body, kind = PAGE.format(name=self.path.strip("/")).encode(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.taking:
            type(self).taken.extend(json.loads(body)["events"])
            self.send_response(202)
        else:
            type(self).refused += 1
            self.send_response(503)
            self.send_header("Retry-After", "60")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def built_script(tmp_path: Path) -> bytes:
    """The npm package's script-tag build, into the test's own directory (not dist/: tests run in parallel)."""
    package = tracker_js.install()
    out = tmp_path / "t.js"
    r = subprocess.run(
        [tracker_js.tool("node"), "build.mjs", str(out)], cwd=package, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return out.read_bytes()


@contextlib.contextmanager
def serving(source: str, tmp_path: Path) -> Iterator[tuple[type[Site], str, Any]]:
    """A site serving the tracker (``source``) and Debian's Chromium: (the site's handler, its URL, the browser)."""
    from playwright.sync_api import sync_playwright

    site = type("S", (Site,), {"script": T_JS.read_bytes() if source == "t.js" else built_script(tmp_path)})
    site.taking, site.taken, site.refused = False, [], 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            try:
                yield site, f"http://127.0.0.1:{server.server_address[1]}", browser
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("source", ["t.js", "script-tag build"])
def test_a_queue_too_big_for_the_browsers_beacons_is_sent_by_the_next_page(source, tmp_path):
    with serving(source, tmp_path) as (site, url, browser):
        page = browser.new_page()
        page.goto(f"{url}/a")
        wait_until(lambda: site.refused >= 1, 10, what="the first page view refused (503, Retry-After 60)")
        ids = page.evaluate("Array.from({length: 600}, () => livemetrics.page())")  # ~190 bytes each
        assert page.evaluate("livemetrics.dropped()") == 101  # the first page view and 100 of these
        site.taking = True
        page.goto(f"{url}/b")  # the page hides with ~95 KB waiting
        waiting = set(ids[100:])
        wait_until(lambda: waiting <= {e["event_id"] for e in site.taken}, 15, what="every waiting event")
        page.evaluate("livemetrics.flush()")
        wait_until(lambda: any(e["page"]["path"] == "/b" for e in site.taken), 10, what="b's page view")
        assert page.evaluate("localStorage.length") == 1  # only the session id is left
    sent = [e["event_id"] for e in site.taken]
    assert len(sent) == len(set(sent)) == 501  # a's 500 and b's page view, each once


@pytest.mark.parametrize("source", ["t.js", "script-tag build"])
def test_two_tabs_hiding_at_the_same_moment_both_keep_their_events(source, tmp_path):
    """Two tabs of one site (each its own renderer), each with 500 refused events, leave at the same moment:
    each keeps what its beacons did not carry in an entry of its own (lm_q_<key>.<tab>.<n>), and the next page
    sends every entry, each event once. Before, both read-modify-wrote one lm_q_<key>: one tab's were lost."""
    with serving(source, tmp_path) as (site, url, browser):
        context = browser.new_context()
        tabs = [context.new_page(), context.new_page()]
        ids: list[str] = []
        for n, tab in enumerate(tabs):
            tab.goto(f"{url}/tab{n}")
            wait_until(lambda n=n: site.refused >= n + 1, 10, what=f"tab {n}'s first page view refused")
            ids += tab.evaluate("Array.from({length: 499}, () => livemetrics.page())")  # ~95 KB with the first
        site.taking = True  # the gateway is back (each tab still waits for its Retry-After, 60 s)
        # Both leave at one moment: tab 1's main thread is busy while tab 0 leaves (its storage cache
        # has not heard of tab 0's write when it hides), as two tabs' hiding at the same instant.
        at = tabs[1].evaluate("Date.now() + 300")
        tabs[1].evaluate(
            "at => setTimeout(() => { while (Date.now() < at + 1500); "
            "dispatchEvent(new PageTransitionEvent('pagehide', {persisted: false})); }, at - Date.now())",
            at,
        )
        tabs[0].evaluate("at => setTimeout(() => { location.href = 'about:blank'; }, at + 200 - Date.now())", at)
        tabs[0].wait_for_url("about:blank", timeout=10_000)
        assert tabs[1].evaluate("Date.now()") >= at + 1500  # its hide ran (the busy task ended)
        tabs[1].close()
        nxt = context.new_page()
        nxt.goto(f"{url}/next")
        waiting = set(ids)
        wait_until(lambda: waiting <= {e["event_id"] for e in site.taken}, 15, what="both tabs' events")
        nxt.evaluate("livemetrics.flush()")
        wait_until(lambda: any(e["page"]["path"] == "/next" for e in site.taken), 10, what="next's page view")
        names = nxt.evaluate("Object.keys(localStorage)")
        assert [n for n in names if n.startswith("lm_q_")] == []  # every entry claimed
    sent = [e["event_id"] for e in site.taken]
    assert len(sent) == len(set(sent))  # each once
    assert set(ids) <= set(sent)
