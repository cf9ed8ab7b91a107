"""How each long-running process starts: gateway, worker, sink, notifier, API, migrate, sellers, up."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable

from livemetrics.settings import Settings


def _serve(app, settings: Settings, port: int) -> int:
    import uvicorn

    from livemetrics.http_head import BoundedHttpTools
    from livemetrics.ws_protocol import BoundedWebSockets

    # log_config=None: uvicorn keeps its hands off logging; its warnings reach the JSON handler (logs.py)
    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
        http=BoundedHttpTools,  # httptools with a bound on each request head's size and time (431, 408)
        ws=BoundedWebSockets,  # a budget of frames per socket, a bound on what is read after a close
        ws_ping_interval=20,
        ws_max_size=settings.ws_max_message_bytes,
    )  # a larger client message is refused unread (1009)
    return 0


def gateway(settings: Settings) -> int:
    """``gateway_workers`` processes share the port, each on its own SO_REUSEPORT socket, and each builds
    its app from the environment's settings (the factory), since an app object cannot be handed to
    another process. httptools and uvloop: the
    fastest HTTP parser and event loop uvicorn has, for the one Python thread each process runs on."""
    import uvicorn

    from livemetrics import logs
    from livemetrics.http_head import BoundedHttpTools
    from livemetrics.in_use import check_port
    from producers.gateway.app import create_gateway

    logs.configure("gateway")  # each gateway worker process configures its own (producers/gateway/workers.py)
    check_port(settings.host, settings.gateway_port, "the gateway")  # InUse names the holder
    options = dict(
        host=settings.host,
        port=settings.gateway_port,
        log_level="warning",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
        http=BoundedHttpTools,  # httptools with a bound on each request head's size and time (431, 408)
        loop="uvloop",
        backlog=2048,
    )
    if settings.gateway_workers > 1:  # one SO_REUSEPORT socket each (producers/gateway/workers.py)
        from producers.gateway.workers import metrics_dir, serve

        return serve(options, settings.gateway_workers, metrics_dir(settings))
    uvicorn.run(create_gateway(settings), **options)
    return 0


def api(settings: Settings, no_sink: bool = False) -> int:
    from livemetrics import logs
    from livemetrics.in_use import check_port, claim_chdb

    logs.configure("api")
    check_port(settings.host, settings.api_port, "the API")  # InUse names the holder
    claim_chdb(settings)
    from api.main import create_api

    return _serve(create_api(settings, run_sink=False if no_sink else None), settings, settings.api_port)


def topics_created(settings: Settings, service: str, stop: threading.Event) -> bool:
    """Create the missing topics, waiting while no broker answers (down, restarting, unreachable); False when
    stopped first. Before, the worker exited 1 after 30 s: under ``up --kafka`` a broker away for minutes ended
    the worker past ``broker_outage_tolerance_s`` and then every restart 30 s later, and the fifth death within
    5 minutes made ``up`` stop every process (operations/supervise.py), the gateway and the API too. Any other
    failure (a refusal: an ACL, a bad topic setting) still ends the process."""
    from livemetrics.topics import create_topics, transient

    def create() -> None:
        create_topics(settings, timeout=5.0)  # changelogs included: the broker never auto-creates topics

    return _waiting_for(f"Kafka at {settings.kafka_bootstrap}", service, stop, create, transient)


def _waiting_for(
    what: str, service: str, stop: threading.Event, attempt: Callable[[], object], passing: Callable[[Exception], bool]
) -> bool:
    """``attempt`` until it succeeds, waiting 1 s doubling to 30 s after each failure ``passing`` says a later
    try may cure (logged: '<service>: waiting for <what> (retrying in N s): <why>'); False when ``stop`` is set
    first. Any other failure is raised."""
    import logging

    log = logging.getLogger(f"livemetrics.{service}")
    pause = 1.0
    while True:
        try:
            attempt()
            return True
        except Exception as exc:
            if not passing(exc):
                raise
            text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            log.warning("%s: waiting for %s (retrying in %g s): %s", service, what, pause, text)
        if stop.wait(pause):
            return False
        pause = min(30.0, pause * 2)


def worker(settings: Settings) -> int:
    from livemetrics import logs

    logs.configure("worker")
    from streams import priority

    priority.apply(settings.worker_nice)  # before Faust starts its threads: they inherit it
    if not topics_created(settings, "worker", _stop_on_signals()):
        return 0
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    import faust

    from streams.app import build_worker

    logs.configure("worker")  # for what the agents' modules log at import; Faust sets the same up again
    app = build_worker(settings)
    worker = faust.Worker(
        app, loglevel="WARNING", quiet=True, redirect_stdouts=False, logging_config=logs.dict_config("worker")
    )  # JSON lines like every process
    worker.spinner = None  # its cursor escape codes would land between the JSON lines of a log file
    worker.execute_from_commandline()
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def migrated(settings: Settings, service: str, stop: threading.Event) -> bool:
    """Apply the migrations, waiting while ClickHouse cannot answer (down, restarting, hung: the sink and
    the notifier start after it anyway); False when stopped first. Before, the process exited 1 with a
    traceback, and ``up`` restarting it 5 times within a few seconds gave up and stopped every process,
    the gateway and the worker too. Any other failure (a statement of ours) still ends the process."""
    from clickhouse.migrate import migrate
    from clickhouse.sink_errors import unavailable

    return _waiting_for("ClickHouse", service, stop, lambda: migrate(settings), unavailable)


def sink(settings: Settings) -> int:
    from livemetrics import logs
    from livemetrics.in_use import claim_chdb

    logs.configure("sink")
    claim_chdb(settings)  # InUse names the holder
    from clickhouse.sink import EventSink
    from clickhouse.sink_ops import serve_ops

    stop = _stop_on_signals()
    if not migrated(settings, "sink", stop):
        return 0
    s = EventSink(settings).start()
    serve_ops(s, settings)  # /healthz, /readyz, /metrics on sink_ops_port (0: off)
    stop.wait()
    s.stop()
    return 0


def notifier(settings: Settings) -> int:
    """Alert delivery without the API (api/notify/standalone.py); the schema is migrated like the sink's."""
    from livemetrics import logs
    from livemetrics.in_use import claim_chdb

    logs.configure("notifier")
    claim_chdb(settings)  # InUse names the holder (embedded chdb: the API's)
    from api.notify.standalone import run as run_notifier

    if not migrated(settings, "notifier", _stop_on_signals()):
        return 0
    return run_notifier(settings)  # its own signal handlers from here on


def migrate(settings: Settings) -> int:
    from livemetrics.in_use import claim_chdb

    claim_chdb(settings)  # InUse names the holder
    from clickhouse.migrate import migrate as run_migrations

    applied = run_migrations(settings)
    print("\n".join(f"applied {a}" for a in applied) or "schema up to date")
    return 0


def sellers(settings: Settings, args: argparse.Namespace) -> int:
    """``sellers add|list|rotate|revoke``: keys live hashed in the seller-keys topic (docs/ingest.md)."""
    import time

    import msgspec

    from livemetrics import keys

    kek = settings.key_encryption_key.get_secret_value()

    def make(kind: str, seller_id: str, label: str, **extra) -> str:
        if kind == "server":
            presented, rec = keys.new_server_key(seller_id, kek, label=label, **extra)
        else:
            presented, rec = keys.new_key({"browser": "pk", "token": "st"}[kind], seller_id, label=label, **extra)
        keys.publish(settings, rec)
        return presented

    from operations.key_options import key_limits

    try:
        limits = key_limits(args.origin, args.event_types) if args.action in ("add", "update") else {}
    except ValueError as exc:
        print(f"livemetrics sellers {args.action}: {exc}", file=sys.stderr)
        return 2
    if args.action == "add":
        extra = {"rate_per_s": args.rate} if args.rate else {}
        types = {"event_types": limits["event_types"]} if "event_types" in limits else {}
        print(f"seller:      {args.seller_id}")
        print(f"browser key: {make('browser', args.seller_id, 'browser', **extra, **limits)}")
        print(
            f"read token:  {make('token', args.seller_id, 'dashboard', **({'can_read_pii': False} if args.no_pii else {}))}"
        )
        if args.server_key:  # signed by the seller's server: never origin-checked
            print(f"server key:  {make('server', args.seller_id, 'server', **extra, **types)}")
        print("Keep the token and server key secret; they cannot be shown again.", file=sys.stderr)
        if not limits.get("origins") and not settings.dev_mode:
            print(
                "The browser key has no allowed origins: the gateway refuses it until you add them with "
                "`livemetrics sellers update <key id> --origin https://your-shop.example`.",
                file=sys.stderr,
            )
        return 0
    if args.action == "add-provider":  # the secret from stdin: never in argv or shell history
        from livemetrics.provider_keys import endpoint_path, new_provider_endpoint

        try:
            rec = new_provider_endpoint(args.seller_id, args.provider, sys.stdin.readline(), kek)
        except ValueError as exc:
            print(f"livemetrics sellers add-provider: {exc}", file=sys.stderr)
            return 2
        keys.publish(settings, rec)
        print(f"endpoint: {endpoint_path(rec)}  (seller {rec.seller_id}, id {rec.key_id})")
        return 0
    reg = keys.KeyRegistry(settings).start()
    try:
        if args.action == "list":
            for r in sorted(reg.records(), key=lambda r: (r.seller_id, r.created_at)):
                if args.seller and r.seller_id != args.seller:
                    continue
                expired = r.expires_at and r.expires_at < time.time()
                state = "revoked" if r.revoked or expired else ("expires" if r.expires_at else "active")
                limits = (f" origins={','.join(r.origins) or '(none)'}" if r.kind == "browser" else "") + (
                    f" types={','.join(r.event_types)}" if r.event_types else ""
                )
                print(f"{r.seller_id:20} {r.kind:8} {r.key_id:14} {state:8} {r.label}{limits}")
            return 0
        rec = reg.record(args.key_id)
        if rec is None:
            print(f"no key with id {args.key_id!r}", file=sys.stderr)
            return 1
        if args.action == "rotate":
            if rec.kind == "provider":
                print(
                    f"{rec.key_id} is a provider endpoint: add a new one with the provider's new signing secret "
                    "(sellers add-provider), then revoke this one",
                    file=sys.stderr,
                )
                return 1
            if rec.revoked:
                print(f"{rec.key_id} is revoked; add a new key instead", file=sys.stderr)
                return 1
            extra = {
                "rate_per_s": rec.rate_per_s,
                "can_read_pii": rec.can_read_pii,
                "origins": rec.origins,
                "event_types": rec.event_types,
            }
            presented = make(rec.kind, rec.seller_id, rec.label, **extra)
            old = (
                msgspec.structs.replace(rec, expires_at=int(time.time()) + args.grace)
                if args.grace
                else msgspec.structs.replace(rec, revoked=True)
            )
            keys.publish(settings, old)
            print(f"new {rec.kind} key for {rec.seller_id}: {presented}")
            print(f"old key {rec.key_id} " + (f"works for {args.grace} s more" if args.grace else "revoked"))
            return 0
        if args.action == "update":
            if "origins" in limits and rec.kind != "browser":
                print(f"{rec.key_id} is a {rec.kind} key; only browser keys have allowed origins", file=sys.stderr)
                return 2
            if args.rate is not None:
                limits["rate_per_s"] = args.rate
            if not limits:
                print("nothing to change: give --origin, --event-types or --rate", file=sys.stderr)
                return 2
            keys.publish(settings, msgspec.structs.replace(rec, **limits))
            print(
                f"updated {rec.kind} {rec.key_id} of {rec.seller_id}: "
                + ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in limits.items())
            )
            return 0
        keys.publish(settings, msgspec.structs.replace(rec, revoked=True))
        print(f"revoked {rec.kind} {rec.key_id} of {rec.seller_id}")
        return 0
    finally:
        reg.stop()


def run(cmd: str, args: argparse.Namespace, settings: Settings) -> int:
    if cmd in ("gateway", "api", "worker", "sink", "notifier"):  # the long-running ones
        from livemetrics import lifeline

        lifeline.exit_when_orphaned(settings.orphan_exit_s)
    if cmd == "gateway":
        return gateway(settings)
    if cmd == "api":
        return api(settings, no_sink=args.no_sink)
    if cmd == "worker":
        return worker(settings)
    if cmd == "sink":
        return sink(settings)
    if cmd == "notifier":
        return notifier(settings)
    if cmd == "migrate":
        return migrate(settings)
    if cmd == "sellers":
        return sellers(settings, args)
    if cmd == "erase":
        from clickhouse.erase import run as erase

        return erase(settings, args.email, args.phone)
    if cmd == "up":
        from operations.up import up

        return up(settings, simulate=not args.no_simulate, kafka=args.kafka, clickhouse=args.clickhouse, rate=args.rate)
    if cmd == "simulate":
        from producers.simulate.command import run as simulate

        return simulate(args, settings)
    raise SystemExit(f"unknown command {cmd}")
