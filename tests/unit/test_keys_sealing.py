"""Server-key secrets: sealed for one record under one key-encryption key, hashes as for every key."""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from livemetrics import keys


def test_sealed_secret_opens_only_for_its_record_and_kek():
    presented, rec = keys.new_server_key("seller-a", "kek-1")
    secret = presented.split("_", 3)[3]
    assert presented.startswith(f"lm_sk_{rec.key_id}_")
    assert secret not in rec.secret_enc and secret not in msgspec.json.encode(rec).decode()
    assert rec.hash == hashlib.sha256(secret.encode()).hexdigest()
    assert keys.unseal(rec, "kek-1") == secret
    assert keys.unseal(rec, "kek-2") is None
    assert keys.unseal(msgspec.structs.replace(rec, seller_id="seller-b"), "kek-1") is None  # moved to another seller
    other_presented, other = keys.new_server_key("seller-a", "kek-1")
    assert keys.unseal(msgspec.structs.replace(other, secret_enc=rec.secret_enc), "kek-1") is None


def test_browser_keys_carry_no_secret():
    _, rec = keys.new_key("pk", "seller-a")
    assert rec.secret_enc == "" and keys.unseal(rec, "kek") is None


def test_signature_is_hmac_sha256_over_timestamp_backfill_flag_and_body():
    sig = keys.sign("s3cret", "1767225600.5", b'{"a":1}')
    assert sig == "v2=" + hmac.new(b"s3cret", b'1767225600.5.0.{"a":1}', hashlib.sha256).hexdigest()
    backfill = keys.sign("s3cret", "1767225600.5", b'{"a":1}', backfill=True)
    assert backfill == "v2=" + hmac.new(b"s3cret", b'1767225600.5.1.{"a":1}', hashlib.sha256).hexdigest()
