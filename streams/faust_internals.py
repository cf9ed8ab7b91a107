"""The Faust internals this package relies on, pinned by a fingerprint of their source.

faust-streaming is pinned exactly in pyproject.toml (and the lock file) because these private parts
are not an API: a release may change them without notice. ``changed()`` lists every one whose source
no longer matches what ``streams/`` was written against; ``tests/unit/streams/test_faust_internals.py``
fails on any, so an upgrade is a conscious change (read the new source, adapt the users below, record
the new fingerprints with ``python -m streams.faust_internals``).

Users, by internal:
- ``Consumer._drain_messages``: replaced per consumer instance by ``streams/fastpath.py``;
- ``Consumer._commit_offsets`` / ``ThreadDelegateConsumer._commit``: the commit is hooked by
  ``streams/changelog.py`` (offsets after the changelog rows are delivered);
- rocksdb ``Store._db_for_partition`` / ``_dbs`` (set in ``__init__``): ``streams/changelog.py`` writes
  batches through it; ``Store._visible_keys`` and memory ``Store._key_partition`` (``__init__``):
  ``streams/minute_rates.py`` lists recovered windows;
- ``Collection._maybe_set_key_ttl``, ``_to_key``, ``_partition_timestamp_keys`` (``__init__``):
  ``streams/tables.py`` and ``streams/minute_rates.py`` (window expiry of recovered keys).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect

VERSION = "0.15.3"

# "module:qualified.name" -> first 16 hex digits of sha256(inspect.getsource(obj))
FINGERPRINTS = {
    "faust.transport.consumer:Consumer._drain_messages": "44a2500309e83c63",
    "faust.transport.consumer:Consumer._commit_offsets": "1a69799041188441",
    "faust.transport.consumer:ThreadDelegateConsumer._commit": "a20eec84e4b2ed50",
    "faust.stores.rocksdb:Store._db_for_partition": "cb7e67d5f9efc4bc",
    "faust.stores.rocksdb:Store._visible_keys": "28b3c24a6884cbcd",
    "faust.stores.rocksdb:Store.__init__": "c7c0fa2989e8ab4a",
    "faust.stores.memory:Store.__init__": "d1705e3cfe39e787",
    "faust.tables.base:Collection._maybe_set_key_ttl": "39b7465fa5803899",
    "faust.tables.base:Collection._to_key": "c90f7153476213b8",
    "faust.tables.base:Collection.__init__": "95568fc09c76d006",
}


def fingerprint(target: str) -> str:
    """The fingerprint of one ``module:qualified.name`` as installed (``missing`` when it is gone)."""
    module, path = target.split(":")
    obj = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return "missing"
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def installed_version() -> str:
    from importlib.metadata import version

    return version("faust-streaming")


def changed() -> list[str]:
    """What no longer matches: the version and every internal whose source differs."""
    out = [] if installed_version() == VERSION else [f"faust-streaming {installed_version()} (pinned {VERSION})"]
    for target, want in FINGERPRINTS.items():
        have = fingerprint(target)
        if have != want:
            out.append(f"{target}: {have} (recorded {want})")
    return out


if __name__ == "__main__":  # prints the fingerprints of what is installed, to record after an upgrade
    for target in FINGERPRINTS:
        print(f'    "{target}": "{fingerprint(target)}",')
