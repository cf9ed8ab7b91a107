"""A whole stack for API and browser tests: key registry, Faust worker process, gateway and API
in-process (the API restartable on its own port), with the worker warmed up."""

from __future__ import annotations

import httpx

from api.main import create_api
from livemetrics.keys import KeyRegistry
from livemetrics.settings import Settings
from livemetrics.ws_protocol import BoundedWebSockets
from producers.gateway.app import create_gateway
from tests.support import factories as f
from tests.support.servers import ThreadServer, WorkerProcess, get_json, wait_until


class Stack:
    def __init__(self, settings: Settings, log_dir, sellers: dict[str, tuple[str, str]]):
        self.settings, self.log_dir, self.sellers = settings, log_dir, sellers
        self.registry = KeyRegistry(settings).start()
        self.worker = WorkerProcess(settings, log_dir).start()
        self.gateway = ThreadServer(create_gateway(settings, self.registry)).start()
        # the API's WebSocket protocol as `livemetrics api` serves it (livemetrics/ws_protocol.py)
        self.api = ThreadServer(create_api(settings, self.registry), ws=BoundedWebSockets).start()
        if settings.demo_storefront:
            self._allow_demo_storefront()

    def _allow_demo_storefront(self) -> None:
        """The sellers' browser keys also allow this gateway's own origin, where its demo storefront's
        pages come from (the gateway's port is known only now)."""
        import msgspec

        from livemetrics import keys
        from livemetrics.origins import normalize_origin

        origin = normalize_origin(self.gateway.url)
        for browser, _token in self.sellers.values():
            if not browser:
                continue
            key_id = browser.split("_")[2]
            wait_until(lambda: self.registry.record(key_id) is not None, 15, what="browser key loaded")
            rec = self.registry.record(key_id)
            if origin in rec.origins:  # a key two entries share
                continue
            keys.publish(self.settings, msgspec.structs.replace(rec, origins=[*rec.origins, origin]))
            wait_until(lambda: origin in self.registry.record(key_id).origins, 15, what="browser key updated")

    def wait_keys(self, token: str) -> None:
        wait_until(lambda: self.registry.record(token.split("_")[2]) is not None, 15, what="keys loaded")

    def post(self, key: str, body: dict, origin: str = f.SHOP_ORIGIN) -> httpx.Response:
        """``body`` sent as a page of ``origin`` (one the browser key allows) would send it."""
        return httpx.post(
            f"{self.gateway.url}/v1/events", json=body, timeout=15, headers={**f.browser_headers(key), "Origin": origin}
        )

    def live(self, seller: str, token: str) -> dict:
        return get_json(f"{self.api.url}/v1/sellers/{seller}/live", token)

    def warm_up(self, seller: str = "warmup") -> None:
        """The worker has joined its group once a snapshot for ``seller`` shows its page view."""
        browser, token = self.sellers[seller]
        self.wait_keys(token)
        assert self.post(browser, f.page_view()).status_code == 202
        try:
            wait_until(
                lambda: self.live(seller, token)["live"]["home"] >= 1,
                90,
                interval=0.2,
                what="worker start",
                alive=self.worker.alive,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.worker.log_tail()}") from None

    def stop_api(self) -> None:
        self.api.stop()

    def start_api(self) -> None:
        """A new API process-equivalent on the same port (what a restart looks like to a browser)."""
        self.api = ThreadServer(
            create_api(self.settings, self.registry), port=self.api.port, ws=BoundedWebSockets
        ).start()

    def close(self) -> None:
        for stop in (self.api.stop, self.gateway.stop, self.worker.stop, self.registry.stop):
            try:
                stop()
            except Exception:  # noqa: BLE001 - stop everything even if one part is already gone
                pass


def module_settings(kafka: str, clickhouse_dsn: str, tmp, **overrides) -> Settings:
    """Settings with their own topics, Faust app id, ClickHouse database and data dir under ``tmp``
    (the ``make_settings`` fixture for one test, or a module-scoped stack)."""
    import secrets
    import uuid

    from livemetrics.topics import create_topics

    tag = uuid.uuid4().hex[:10]
    # Real random secrets, dev mode off: processes the tests start pass livemetrics/secrets_check.py as in production.
    values = dict(
        data_dir=tmp / "data",
        kafka_bootstrap=kafka,
        topic_prefix=f"t{tag}.",
        app_id=f"lm-{tag}",
        ip_hash_secret=secrets.token_urlsafe(32),
        key_encryption_key=secrets.token_urlsafe(32),
        clickhouse_dsn=clickhouse_dsn,
        clickhouse_database=f"lm_{tag}",
        store="memory://",
        admin_token=f"admin-{tag}-{secrets.token_hex(16)}",
        sink_group=f"sink-{tag}",
        notify_group=f"notify-{tag}",  # a group of its own: another test's notifiers would rebalance it
        partitions=3,
        worker_metrics_port=0,
        sink_ops_port=0,  # tests that scrape them pick a free port
        # every test's events come from 127.0.0.1 with a few keys: browser-key limits are tested
        # on their own (tests/integration/test_gateway_browser_keys.py)
        browser_rate_per_s=1_000_000,
        client_ip_rate_per_s=0,
        # and API requests and WebSockets come from one client with a few tokens: the per-token
        # and per-IP limits are tested on their own (tests/integration/test_api_guards.py)
        api_rate_per_s=1_000_000,
        api_rate_burst=1_000_000,
        ws_max_per_ip=10_000,
        # and a seller's channel changes (schemathesis changes one channel's rules many times): the bound is
        # tested on its own (tests/integration/test_api_channel_changes.py)
        notify_channel_changes_per_hour=1_000_000,
    )
    values.update(overrides)
    s = Settings(**values)
    create_topics(s)
    return s


def new_seller(s: Settings, seller_id: str, **token_extra) -> tuple[str, str]:
    """A browser key and a read token for ``seller_id``, stored in Kafka."""
    from livemetrics import keys

    browser, brec = keys.new_key("pk", seller_id, label="browser", origins=[f.SHOP_ORIGIN])
    token, trec = keys.new_key("st", seller_id, label="dashboard", **token_extra)
    keys.publish_all(s, [brec, trec])  # one producer for both
    return browser, token
