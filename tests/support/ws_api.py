"""An API served in-process with its bounded WebSockets, as ``livemetrics api`` serves it
(operations/processes.py), for two sellers shop-a and shop-b with read tokens, their tokens known to the key
registry and the live feed caught up (test_api_ws_floods, test_api_ws_never_reads)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api.main import create_api
from livemetrics.keys import KeyRegistry
from livemetrics.topics import create_topics
from livemetrics.ws_protocol import BoundedWebSockets
from tests.support.servers import ThreadServer, wait_until
from tests.support.stack import module_settings, new_seller


@contextmanager
def ws_api(
    kafka: str, clickhouse_dsn: str, tmp: Path, configure: Callable[[ThreadServer], None] | None = None, **server: Any
) -> Iterator[dict]:
    """Yields settings, tokens (by seller), server and app. ``server`` goes to uvicorn's config; ``configure``
    sees the server before it starts."""
    s = module_settings(kafka, clickhouse_dsn, tmp)
    create_topics(s)
    tokens = {n: new_seller(s, n)[1] for n in ("shop-a", "shop-b")}
    registry = KeyRegistry(s).start()
    app = create_api(s, registry, run_sink=False)
    thread_server = ThreadServer(app, ws=BoundedWebSockets, **server)
    if configure:
        configure(thread_server)
    thread_server.start()
    try:
        wait_until(lambda: all(registry.authenticate(t, ("token",)) for t in tokens.values()), 15, what="tokens")
        wait_until(lambda: app.state.feed.caught_up.is_set(), 30, what="the live feed caught up")
        yield {"settings": s, "tokens": tokens, "server": thread_server, "app": app}
    finally:
        thread_server.stop()
        registry.stop()
