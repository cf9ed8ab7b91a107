"""Payment-provider webhook endpoints of a seller, kept in ``seller-keys`` like keys (docs/providers.md).

A record of kind ``provider`` (label: the provider, e.g. ``stripe``): its id is the path segment of the
endpoint URL (``/v1/providers/stripe/<id>``), its seller is who the events are for, and the provider's
signing secret is sealed with the key-encryption key (gateways need it to verify signatures) and hashed
like every secret. Revoke or list it like any key (``livemetrics sellers revoke|list``)."""

from __future__ import annotations

import secrets
import time

import msgspec

from livemetrics.keys import KeyRecord, _hash, seal

PROVIDERS = ("stripe",)


def new_provider_endpoint(seller_id: str, provider: str, signing_secret: str, kek: str) -> KeyRecord:
    """A new endpoint record for ``provider`` with its signing secret sealed; ``ValueError`` names what is
    wrong with the input."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; one of: {', '.join(PROVIDERS)}")
    signing_secret = signing_secret.strip()
    if provider == "stripe" and not (signing_secret.startswith("whsec_") and len(signing_secret) >= 20):
        raise ValueError(
            "a Stripe signing secret starts with whsec_ (Stripe dashboard: Developers > Webhooks > "
            "your endpoint > Signing secret)"
        )
    rec = KeyRecord(
        key_id=secrets.token_hex(6),
        kind="provider",
        seller_id=seller_id,
        hash=_hash(signing_secret),
        created_at=int(time.time()),
        label=provider,
    )
    return msgspec.structs.replace(rec, secret_enc=seal(rec, signing_secret, kek))


def endpoint_path(rec: KeyRecord) -> str:
    return f"/v1/providers/{rec.label}/{rec.key_id}"
