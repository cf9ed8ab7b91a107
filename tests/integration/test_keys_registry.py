"""The key registry (livemetrics/keys.py) on the shared broker: malformed ``seller-keys`` records are logged
and skipped, and never stop the thread that follows the topic."""

from __future__ import annotations

import logging

import msgspec
import pytest

from livemetrics import keys
from tests.support.kafka_write import writer

pytestmark = pytest.mark.integration

GARBAGE = [  # (message key, value) of records nobody should have written
    (b"k1", b"{not json"),
    (b"k2", b'{"key_id": 5, "kind": "token"}'),  # wrong field types, fields missing
    (b"k3", b'["a", "list"]'),
    (b"k4", msgspec.json.encode({"key_id": "k4", "kind": "superuser", "seller_id": "s", "hash": "h", "created_at": 1})),
    (b"\xff\xfe", None),  # a tombstone whose key is not UTF-8
]


def write(s, records) -> None:
    """Store ``records`` (a compacted topic refuses a record without a key: the broker drops that whole batch)."""
    p = writer(s)
    errors: list = []
    for key, value in records:
        p.produce(s.topic("seller-keys"), key=key, value=value, on_delivery=lambda err, _m: err and errors.append(err))
    assert p.flush(15) == 0 and not errors, errors


def test_malformed_records_are_skipped_and_later_keys_still_work(settings, caplog):
    caplog.set_level(logging.WARNING, logger="livemetrics.keys")
    bad_server_key = keys.new_server_key("shop-a", settings.key_encryption_key.get_secret_value())[1]
    bad_server_key = msgspec.structs.replace(bad_server_key, secret_enc="!!not base64!!")
    write(settings, GARBAGE + [(bad_server_key.key_id.encode(), msgspec.json.encode(bad_server_key))])
    browser, rec = keys.new_key("pk", "shop-a")
    keys.publish(settings, rec)

    registry = keys.KeyRegistry(settings).start()
    try:
        assert registry.ready and registry.wait_for(rec.key_id)
        assert registry.authenticate(browser, ("browser",)) == rec
        assert registry.skipped == len(GARBAGE)
        assert registry.server_secret(bad_server_key.key_id) is None  # its secret cannot be opened: unusable
        assert sum("malformed seller-keys record" in r.getMessage() for r in caplog.records) == len(GARBAGE)

        # Garbage arriving while the registry follows the topic: skipped too, the next key still arrives.
        write(settings, GARBAGE[:2])
        token, trec = keys.new_key("st", "shop-a")
        keys.publish(settings, trec)
        assert registry.wait_for(trec.key_id) and registry.authenticate(token, ("token",)) == trec
        assert registry.skipped == len(GARBAGE) + 2 and registry._thread.is_alive()
    finally:
        registry.stop()
