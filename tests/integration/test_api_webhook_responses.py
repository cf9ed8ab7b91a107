"""What a seller's webhook endpoint can make the notifier do with its answer (a running API with its
notifier, real Kafka, chdb, a real HTTP server): a redirect is not followed (a failed attempt that says
so; the redirect's target gets nothing), and a huge error body is not read (the attempt fails at once
with the first 200 bytes of it, however much the endpoint would send)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clickhouse.migrate import migrate
from tests.support.notify_api import FAST_RETRIES, Api, alert, send
from tests.support.servers import wait_until

pytestmark = pytest.mark.integration
HUGE = 200 * 1024 * 1024  # what the endpoint says it sends: far more than anyone should read


class Endpoints:
    """/redirect answers 302 to /internal (which counts its requests); /huge answers 500 with an
    endless body."""

    def __init__(self):
        self.internal_hits = 0
        self.huge_bytes_sent = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    if self.path == "/redirect":
                        self.send_response(302)
                        self.send_header("Location", f"http://127.0.0.1:{outer.port}/internal")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    elif self.path == "/internal":
                        outer.internal_hits += 1
                        self.send_response(200)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        self.send_response(500)
                        self.send_header("Content-Length", str(HUGE))
                        self.end_headers()
                        chunk = b"E" * 65536
                        while outer.huge_bytes_sent < HUGE:
                            self.wfile.write(chunk)
                            outer.huge_bytes_sent += len(chunk)
                except OSError:  # the notifier closed the connection: what it should do
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def test_redirects_are_not_followed_and_huge_answers_not_read(make_settings, add_seller):
    s = make_settings(dev_mode=True, notify_retry_for_s=60.0, **FAST_RETRIES)  # dev mode: http to 127.0.0.1
    migrate(s)
    ends = Endpoints()
    api = Api(s, {"shop-a": add_seller(s, "shop-a")[1]})
    try:
        for path in ("/redirect", "/huge"):
            assert api.call("POST", "shop-a", "/webhooks", json={"url": ends.url(path)}).status_code == 201
        send(s, alert("shop-a", "a-1"))

        def errors():
            found = {d["target"].rsplit("/", 1)[1]: d["last_error"] for d in api.deliveries("shop-a")}
            return found if all(found.get(k) for k in ("redirect", "huge")) else None

        found = wait_until(errors, 30, interval=0.2, what="both attempts failed")
        assert found["redirect"] == "the endpoint answered HTTP 302 (redirects are not followed): ", found
        assert found["huge"] == "the endpoint answered HTTP 500: " + "E" * 200, found
        assert ends.internal_hits == 0
        # The notifier stopped reading after its 200 bytes and closed: the endpoint could not send it all.
        assert ends.huge_bytes_sent < HUGE / 4, ends.huge_bytes_sent
    finally:
        api.stop()
        api.registry.stop()
        ends.httpd.shutdown()
