"""The API app: wires the routers and the services they share (key registry, live feed, sink)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from api import clickhouse_errors, logs
from api.body_limit import BodyLimit
from api.live_feed import LiveFeed
from api.notify.service import start_notifications, stop_notifications
from api.routes import admin_erase, dashboard, health, live, me, notifications, payment_errors, reports, ws_tickets
from api.ws_tickets import TicketBook, ticket_key
from livemetrics import swagger_ui
from livemetrics.compacted import wait_all
from livemetrics.keys import KeyRegistry
from livemetrics.loop_watch import watching
from livemetrics.settings import Settings, get_settings


def create_api(
    settings: Settings | None = None, registry: KeyRegistry | None = None, run_sink: bool | None = None
) -> FastAPI:
    settings = settings or get_settings()
    if run_sink is None:
        # chdb allows one process per data directory: in embedded mode the API owns it and runs the sink.
        run_sink = settings.clickhouse_embedded and settings.embedded_sink

    logs.configure()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        # Each part is stopped if a later one fails to start (a migration refused, ClickHouse away): the API
        # then exits with its threads and topic watches closed, not left running in the process (a test's).
        async with AsyncExitStack() as started:
            # the readers of Kafka start together and are waited for together, below (compacted.wait_all)
            app.state.registry = registry or KeyRegistry(settings).start(wait_s=0)
            if registry is None:
                started.callback(app.state.registry.stop)
            app.state.feed = LiveFeed(settings).start(asyncio.get_running_loop())
            started.callback(app.state.feed.stop)
            app.state.tickets = TicketBook(
                ticket_key(settings.key_encryption_key.get_secret_value()),
                settings.ws_ticket_ttl_s,
                settings.ws_ticket_cap,
                per_key=settings.ws_tickets_per_token,
            )
            app.state.sink = None
            if run_sink:
                from clickhouse.migrate import migrate
                from clickhouse.sink import EventSink

                await asyncio.to_thread(migrate, settings)
                app.state.sink = EventSink(settings).start()
                started.push_async_callback(asyncio.to_thread, app.state.sink.stop)
            app.state.notifier = app.state.channels = None
            started.push_async_callback(stop_notifications, app.state)  # what of them started, if not all
            await start_notifications(app.state, settings)  # webhooks: docs/notifications.md
            ready = (app.state.registry.wait_ready, app.state.channels.wait_ready)
            await asyncio.to_thread(wait_all, settings.startup_wait_s, *ready)
            loop = asyncio.get_running_loop()

            def on_key_change(rec) -> None:  # wake sockets so that revoked tokens are closed at once
                if rec.revoked:
                    for subs in list(app.state.feed.subscribers.values()):
                        for sub in list(subs):
                            loop.call_soon_threadsafe(sub.wake.set)

            app.state.registry.listeners.append(on_key_change)
            # up restarts an API whose /healthz stops answering; under compose only an exit restarts it
            async with watching("api", settings.loop_stale_s, settings.loop_stuck_exit_s):
                yield

    app = FastAPI(
        title="livemetrics API",
        version="1",
        description="Live and historical customer metrics for marketplace sellers.",
        lifespan=lifespan,
        docs_url=None,  # served by swagger_ui.serve: pinned and hashed, not FastAPI's floating CDN files
    )
    swagger_ui.serve(app, "livemetrics API")
    app.add_middleware(BodyLimit)  # the most of a body this API reads (api/body_limit.py)
    app.add_middleware(logs.AccessLog)  # added last: outermost, so it logs the 413s too
    clickhouse_errors.install(app)  # history unreachable: 503 + Retry-After, not a 500
    app.include_router(health.router)
    app.include_router(me.router)
    app.include_router(live.router)
    app.include_router(ws_tickets.router)
    app.include_router(reports.router)
    app.include_router(payment_errors.router)
    app.include_router(admin_erase.router)
    app.include_router(notifications.router)
    dashboard.mount(app)
    return app
