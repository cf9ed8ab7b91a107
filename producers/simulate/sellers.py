"""The simulated sellers' keys: created once through ``livemetrics.keys`` and kept in
``<data_dir>/up/sellers-<broker>.json`` (mode 0600) so that the dashboard links printed by
``livemetrics up`` stay valid across restarts. Only hashes are in Kafka; this file is the one place
where the demo secrets exist, the way a seller would keep theirs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from livemetrics import keys
from livemetrics.origins import normalize_origin
from livemetrics.settings import Settings
from producers.simulate.catalog import SELLER_IDS


def keys_file(settings: Settings) -> Path:
    where = hashlib.sha256(f"{settings.kafka_bootstrap}|{settings.topic_prefix}".encode()).hexdigest()[:10]
    return settings.data_dir.resolve() / "up" / f"sellers-{where}.json"


def demo_origins(settings: Settings, gateway: str | None = None) -> list[str]:
    """The origins the demo storefront's pages (served by the gateway under /demo/) and the simulator, which
    sends as those pages would, come from: the gateway's own, by each loopback name, and ``gateway``."""
    port = settings.gateway_port
    hosts = ["127.0.0.1", "localhost"] + (
        [settings.host] if settings.host not in ("127.0.0.1", "localhost", "0.0.0.0", "::") else []
    )
    out = [normalize_origin(f"http://{h}:{port}") for h in hosts]
    if gateway and normalize_origin(gateway_origin(gateway)) not in out:
        out.append(normalize_origin(gateway_origin(gateway)))
    return out


def gateway_origin(url: str) -> str:
    """scheme://host[:port] of a gateway URL (its path dropped): the Origin the simulator sends."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return normalize_origin(f"{u.scheme}://{u.netloc}")


def _still_valid(registry: keys.KeyRegistry, entry: dict, origins: list[str]) -> bool:
    browser = registry.authenticate(entry["browser_key"], ("browser",))
    return (
        browser is not None
        and set(origins) <= set(browser.origins)
        and all(
            registry.authenticate(entry[k], kinds) is not None
            for k, kinds in (("token", ("token",)), ("server_key", ("server",)))
        )
    )


def ensure_demo_sellers(
    settings: Settings, seller_ids: tuple[str, ...] = SELLER_IDS, gateway: str | None = None
) -> dict[str, dict[str, str]]:
    """{seller_id: {"browser_key", "token", "server_key"}} for every demo seller; reuses stored keys that
    still work. The server key (signed requests) is what ``--backfill-days`` sends history with. Browser keys
    allow the demo storefront's origins (``demo_origins``), as a seller's keys allow their shop's."""
    origins = demo_origins(settings, gateway)
    path = keys_file(settings)
    stored: dict = json.loads(path.read_text()) if path.exists() else {}
    registry = keys.KeyRegistry(settings).start()
    try:
        out, new = {}, []
        for sid in seller_ids:
            entry = stored.get(sid)
            if not entry or not _still_valid(registry, entry, origins):
                browser, brec = keys.new_key("pk", sid, label="simulator", origins=origins)
                token, trec = keys.new_key("st", sid, label="up dashboard")
                server, srec = keys.new_server_key(
                    sid, settings.key_encryption_key.get_secret_value(), label="simulator backfill"
                )
                new += [brec, trec, srec]
                entry = {"browser_key": browser, "token": token, "server_key": server}
            out[sid] = entry
        if new:  # one producer for all of them
            keys.publish_all(settings, new)
    finally:
        registry.stop()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return out
