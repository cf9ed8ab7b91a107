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
from livemetrics.settings import Settings
from producers.simulate.catalog import SELLER_IDS


def keys_file(settings: Settings) -> Path:
    where = hashlib.sha256(f"{settings.kafka_bootstrap}|{settings.topic_prefix}".encode()).hexdigest()[:10]
    return settings.data_dir.resolve() / "up" / f"sellers-{where}.json"


def _still_valid(registry: keys.KeyRegistry, entry: dict) -> bool:
    return all(registry.authenticate(entry[k], kinds) is not None
               for k, kinds in (("browser_key", ("browser",)), ("token", ("token",)), ("server_key", ("server",))))


def ensure_demo_sellers(settings: Settings, seller_ids: tuple[str, ...] = SELLER_IDS) -> dict[str, dict[str, str]]:
    """{seller_id: {"browser_key", "token", "server_key"}} for every demo seller; reuses stored keys that
    still work. The server key (signed requests) is what ``--backfill-days`` sends history with."""
    path = keys_file(settings)
    stored: dict = json.loads(path.read_text()) if path.exists() else {}
    registry = keys.KeyRegistry(settings).start()
    try:
        out = {}
        for sid in seller_ids:
            entry = stored.get(sid)
            if not entry or not _still_valid(registry, entry):
                browser, brec = keys.new_key("pk", sid, label="simulator")
                token, trec = keys.new_key("st", sid, label="up dashboard")
                server, srec = keys.new_server_key(sid, settings.key_encryption_key.get_secret_value(),
                                                   label="simulator backfill")
                for rec in (brec, trec, srec):
                    keys.publish(settings, rec)
                entry = {"browser_key": browser, "token": token, "server_key": server}
            out[sid] = entry
    finally:
        registry.stop()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return out
