"""The ``livemetrics`` command (README.md, Commands). Each sub-command's work lives in its own module; this file is
only the parser and the dispatch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from livemetrics import __version__
from livemetrics.settings import SettingsError, get_settings

NOT_YET = {}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="livemetrics",
        description="Live customer metrics for online marketplaces. "
        "Settings come from LIVEMETRICS_* environment variables and ./.env.",
    )
    p.add_argument("--version", action="version", version=f"livemetrics {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="start the whole stack on this machine (broker, worker, gateway, API with sink); "
        "restarts what dies, stops everything when it ends",
        description="Start the whole stack on this machine and supervise it: a process that dies is "
        "restarted with backoff (1 s doubling to 30 s); 5 deaths of one within 5 minutes "
        "stop everything. Ctrl-C, SIGTERM, SIGHUP, or losing its output stop every process "
        "it started; even a SIGKILL of up ends them (docs/operations.md, Supervision).",
    )
    up.add_argument("--no-simulate", action="store_true", help="do not start the traffic simulator")
    up.add_argument("--kafka", help="bootstrap servers of an existing Kafka (default: start the local broker)")
    up.add_argument(
        "--clickhouse",
        help="ClickHouse DSN, e.g. http://user:pass@host:8123 (default: embedded chdb; "
        "with a server the sink runs as its own process)",
    )
    up.add_argument("--rate", type=float, default=20.0, help="simulated events/s (default 20)")

    sim = sub.add_parser(
        "simulate",
        help="realistic storefront traffic through the gateway (several sellers, "
        "daily rhythm, abandonment, payment failures, bots, backfill)",
    )
    from producers.simulate.command import add_arguments as simulate_arguments

    simulate_arguments(sim)

    k = sub.add_parser("kafka", help="the local Kafka broker (KRaft, single node or --brokers N) from Maven Central")
    k.add_argument(
        "action",
        choices=["start", "stop", "status", "topics", "provision"],
        help="start (also creates the topics), stop, status, topics (only create them), "
        "provision (only download the broker's jars from Maven Central). With "
        "LIVEMETRICS_KAFKA_SECURITY=sasl the broker takes SASL/SCRAM logins only and start/topics "
        "also apply the ACLs (docs/operations.md, Secure Kafka)",
    )
    k.add_argument(
        "--brokers",
        type=int,
        default=1,
        help="start: a local cluster of N KRaft nodes, each on its own ports (bootstrap port + 2i, "
        "controller port + 2i) and data dir; topics get min(3, N) replicas and "
        "min.insync.replicas one less unless LIVEMETRICS_REPLICATION_FACTOR / "
        "LIVEMETRICS_MIN_INSYNC_REPLICAS say otherwise (docs/operations.md, Cluster). "
        "stop/status find a cluster by themselves",
    )

    sub.add_parser("gateway", help="run the ingest gateway (POST /v1/events)")
    sub.add_parser(
        "worker",
        help="run a Faust stream worker (live counts, snapshots, alerts); /healthz, /readyz, "
        "/metrics on LIVEMETRICS_WORKER_METRICS_PORT (8002)",
    )
    sub.add_parser(
        "sink",
        help="run the ClickHouse sink on its own (for a ClickHouse server; embedded chdb runs it "
        "in the API); /healthz, /readyz, /metrics on LIVEMETRICS_SINK_OPS_PORT (8003)",
    )
    sub.add_parser(
        "notifier",
        help="run the alert notifier on its own (one per deployment, API replicas with LIVEMETRICS_NOTIFY=false; "
        "needs a ClickHouse server); /healthz, /readyz, /metrics on LIVEMETRICS_NOTIFIER_OPS_PORT (8004)",
    )
    api = sub.add_parser("api", help="run the API (live, reports, WebSocket, dashboard)")
    api.add_argument("--no-sink", action="store_true", help="do not run the embedded ClickHouse sink in this process")
    sub.add_parser(
        "migrate",
        help="apply pending ClickHouse migrations (one that changes a table's layout "
        "copies it: stop the sinks first, docs/clickhouse.md)",
    )
    er = sub.add_parser("erase", help="erase a customer's personal data from every ClickHouse table")
    er.add_argument("--email", help="the customer's email address")
    er.add_argument("--phone", help="the customer's phone number (compared by its digits)")

    s = sub.add_parser("sellers", help="manage sellers' keys and tokens")
    ss = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = ss.add_parser("add", help="create a seller's browser key and read token (and a server key)")
    add.add_argument("seller_id")
    add.add_argument("--server-key", action="store_true", help="also create a server key (HMAC-signed requests)")
    add.add_argument(
        "--no-pii",
        action="store_true",
        help="the read token sees customer contact, IP, user agent and free text masked",
    )
    add.add_argument(
        "--rate",
        type=int,
        default=0,
        help="events/s per key and gateway process (default: "
        "LIVEMETRICS_BROWSER_RATE_PER_S for the browser key, LIVEMETRICS_GATEWAY_RATE_PER_S for the server key)",
    )
    _key_limit_arguments(add)
    ls = ss.add_parser("list", help="list keys and tokens (never their secrets)")
    ls.add_argument("--seller", help="only this seller's keys")
    rot = ss.add_parser("rotate", help="replace a key or token with a new one of the same kind and seller")
    rot.add_argument("key_id")
    rot.add_argument("--grace", type=int, default=0, help="seconds the old key keeps working (default: revoked now)")
    upd = ss.add_parser("update", help="replace a key's allowed origins, event types or rate (the key stays the same)")
    upd.add_argument("key_id")
    upd.add_argument("--rate", type=int, help="events/s per gateway process (0: the default of its kind)")
    _key_limit_arguments(upd)
    rev = ss.add_parser("revoke", help="revoke a key or token by its id")
    rev.add_argument("key_id")
    prov = ss.add_parser(
        "add-provider",
        help="register a payment provider's webhook endpoint for a seller; prints "
        "its path on the gateway. The provider's signing secret is read from standard input "
        "(docs/providers.md)",
    )
    prov.add_argument("seller_id")
    prov.add_argument("provider", choices=["stripe"])

    sec = sub.add_parser(
        "secrets",
        help="write fresh random secrets (admin token, key-encryption key, IP-hash "
        "secret, ClickHouse password) to an env file",
    )
    secs = sec.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = secs.add_parser(
        "init",
        help="write a fresh random value for every secret the env file does not set yet "
        "(mode 0600); every process refuses placeholder secrets outside dev mode",
        description="Write LIVEMETRICS_ADMIN_TOKEN, LIVEMETRICS_IP_HASH_SECRET, "
        "LIVEMETRICS_KEY_ENCRYPTION_KEY and CLICKHOUSE_APP_PASSWORD (256 random bits "
        "each) to an env file; other lines are kept. Refuses when the file already "
        "sets one of them, unless --force (docs/security.md, Secrets).",
    )
    init.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env"),
        help="the file to write (default ./.env; deploy/.env is what docker compose reads)",
    )
    init.add_argument(
        "--force",
        action="store_true",
        help="replace secrets the file already sets (sealed server keys then need new keys)",
    )

    b = sub.add_parser("bench", help="measure a part against its ceiling; prints one JSON line per figure")
    b.add_argument(
        "part",
        choices=["gateway", "streams", "sink", "queries", "ws", "e2e", "alerts", "cards", "all"],
        help="gateway: events/s accepted through POST /v1/events vs a raw produce of the same records; "
        "streams: events/s one worker folds vs a plain consume, and its memory with 1M sessions; "
        "sink: rows/s Kafka -> ClickHouse vs a raw Arrow insert; queries: p50/p95 of every report "
        "vs a raw scan; ws: 202 -> snapshot on 1,000 dashboard WebSockets vs a plain consumer; "
        "e2e: the whole stack under load (throughput, latency to the dashboard, lag, CPU); "
        "alerts: a failed payment's 202 -> the seller's webhook, 1,000 sellers, one endpoint "
        "hanging, vs a bare POST; "
        "cards: the gateway's CPU for one hostile 32 KiB event and what it counts as in the rate limits, vs "
        "decoding it; "
        "all: each in turn (BENCHMARKS.md)",
    )
    b.add_argument("--duration", type=float, default=10.0, help="seconds of load per measurement (default 10)")
    b.add_argument("--rate", type=float, help="e2e only: one step of this many offered events/s (see --ladder)")
    b.add_argument(
        "--ladder",
        help="e2e only: offered events/s per step, comma-separated, e.g. 2k,5k,10k (default 2k,5k,10k,15k,20k)",
    )
    b.add_argument(
        "--timeline",
        help="e2e only: append a time series to this file (JSON lines: every 0.5 s each process's CPU and "
        "run-queue wait, its main thread's, the machine's busy and stolen time; each probe's latencies)",
    )
    b.add_argument(
        "--broker-requests",
        action="store_true",
        help="e2e only: per step, the broker's requests/s by type and topic and its CPU by thread (needs a JDK)",
    )
    b.add_argument(
        "--broker-clients",
        action="store_true",
        help="e2e only: per step, every request type's rate per process and client id, from the local broker's "
        "request log (which costs the broker CPU: use another run for its CPU)",
    )
    b.add_argument(
        "--connections",
        type=int,
        default=64,
        help="gateway only: concurrent keep-alive client connections (default 64)",
    )
    b.add_argument(
        "--batch-rows",
        type=int,
        default=200_000,
        help="sink only: rows per batch for the sink and its raw ceiling (default 200000; "
        "the sink's own default, sink_batch_rows, is 50000)",
    )
    b.add_argument("--sellers", type=int, help="alerts only: sellers, each with a webhook (default 1000)")
    b.add_argument("--kafka", help="bootstrap servers of an existing broker (default: start a local one)")
    b.add_argument("--clickhouse", help="ClickHouse DSN (default: a temporary chdb directory)")

    for name, why in NOT_YET.items():
        sub.add_parser(name, help=f"not yet: comes with {why}")
    return p


# Commands that run with the secrets (or write what they protect); `up` runs its children in dev mode.
NEEDS_SECRETS = ("gateway", "worker", "sink", "notifier", "api", "migrate", "sellers", "erase")


def _key_limit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--origin",
        action="append",
        metavar="URL",
        help="browser key: a web origin whose pages may send with it, e.g. https://shop.example "
        "(repeat for each; outside dev mode a browser key without one is refused)",
    )
    p.add_argument(
        "--event-types",
        metavar="TYPES",
        help="comma-separated event types the keys may send, e.g. page_view,heartbeat,checkout_started "
        "(default: all; a request with another type gets 403)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cmd = args.command
    if cmd == "secrets":  # before any setting is read: it writes what the others need
        from operations.secrets_init import run as secrets_init

        return secrets_init(args.env_file, args.force)
    try:
        settings = get_settings()
    except SettingsError as exc:  # one clear line per bad setting, not a pydantic traceback
        print(f"livemetrics {cmd}: {exc}", file=sys.stderr)
        return 2
    if cmd in NEEDS_SECRETS:
        from livemetrics.secrets_check import InsecureSecrets, check_secrets

        try:
            check_secrets(settings)
        except InsecureSecrets as exc:
            print(f"livemetrics {cmd}: {exc}", file=sys.stderr)
            return 2
    if cmd in NOT_YET:
        print(f"livemetrics {cmd}: not yet implemented; comes with {NOT_YET[cmd]}", file=sys.stderr)
        return 2
    if cmd == "kafka":
        from livemetrics.topics import create_topics
        from operations.kafka_cluster import cluster_recorded
        from operations.kafka_local import KafkaLaunchError, LocalKafka

        if args.brokers > 1 or (args.action in ("stop", "status") and cluster_recorded(settings)):
            from operations.kafka_cluster_command import cluster_command

            return cluster_command(settings, args.action, args.brokers)
        lk = LocalKafka(settings)
        try:
            if args.action == "start":
                print(lk.start())
                created = create_topics(settings)
                print(f"topics: {len(created)} created" if created else "topics: all present")
            elif args.action == "provision":
                print(f"kafka {settings.kafka_version} jars in {lk.provision()}")
            elif args.action == "stop":
                print(lk.stop())
            elif args.action == "topics":
                created = create_topics(settings)
                print("\n".join(created) or "all topics present")
            else:
                print(lk.status())
        except KafkaLaunchError as exc:
            print(f"livemetrics kafka: {exc}", file=sys.stderr)
            return 1
        return 0
    from livemetrics.holders import InUse

    try:
        if cmd == "bench":
            from operations import bench

            return bench.run(args.part, args)
        from operations import processes

        return processes.run(cmd, args, settings)
    except InUse as exc:  # a data directory or port another process holds: say which, no traceback
        print(f"livemetrics {cmd}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
