"""``livemetrics simulate``: argument handling and the asyncio entry point."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from livemetrics.settings import Settings
from producers.simulate.catalog import SELLER_IDS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gateway", help="gateway base URL (default: http://127.0.0.1:<LIVEMETRICS_GATEWAY_PORT>)")
    p.add_argument(
        "--rate", type=float, default=20.0, help="live events/s now (default 20); follows the daily rhythm from there"
    )
    p.add_argument(
        "--sellers",
        type=int,
        default=len(SELLER_IDS),
        choices=range(1, len(SELLER_IDS) + 1),
        help=f"how many of the demo sellers ({', '.join(SELLER_IDS)}) get traffic (default all)",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument(
        "--burst",
        type=int,
        default=0,
        metavar="N",
        help="N card payments failing with the same error code within 5 s, to show the spike alert",
    )
    p.add_argument(
        "--burst-at", type=float, default=30.0, metavar="S", help="seconds after start for --burst (default 30)"
    )
    p.add_argument(
        "--backfill-days",
        type=float,
        default=0,
        metavar="N",
        help="first send N days of history with past timestamps through each seller's signed server key "
        "(the gateway takes backfill up to LIVEMETRICS_EVENT_TTL_DAYS back, default 400)",
    )
    p.add_argument("--sessions-per-day", type=int, default=1500, help="backfill volume, all sellers (default 1500)")
    p.add_argument("--no-live", action="store_true", help="only backfill, no live traffic")
    p.add_argument("--seed", type=int, help="random seed, for repeatable traffic")


async def _main(args: argparse.Namespace, gateway: str, sellers: dict) -> int:
    from producers.simulate.runner import KeyRefused, run_backfill, run_live

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        if args.backfill_days > 0:
            await run_backfill(gateway, sellers, args.backfill_days, args.sessions_per_day, seed=args.seed)
        if not args.no_live:
            await run_live(
                gateway,
                sellers,
                args.rate,
                duration=args.duration,
                burst=args.burst,
                burst_at=args.burst_at,
                seed=args.seed,
            )
    except asyncio.CancelledError:
        print("simulator stopped", file=sys.stderr)
    except KeyRefused as exc:
        print(f"livemetrics simulate: {exc}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    from producers.simulate.sellers import ensure_demo_sellers

    gateway = args.gateway or f"http://127.0.0.1:{settings.gateway_port}"
    wanted = SELLER_IDS[: args.sellers]
    sellers = ensure_demo_sellers(settings, wanted, gateway)  # reuses the keys `livemetrics up` stored
    return asyncio.run(_main(args, gateway, sellers))
