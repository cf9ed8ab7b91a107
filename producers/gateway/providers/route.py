"""``POST /v1/providers/stripe/{endpoint_id}``: a seller's Stripe webhook endpoint on the gateway.

The endpoint id names a ``provider`` record in ``seller-keys`` (``livemetrics sellers add-provider``):
its seller and the sealed signing secret. A verified event of a handled type becomes one contract event,
validated and enriched like any other (``ingest``), stamped ``source: "stripe"``; 200 only once Kafka has
it, 503 with Retry-After when Kafka cannot confirm (Stripe retries for days), 400 for a bad signature
(what Stripe's documentation expects), 200 ``ignored`` for other event types so Stripe stops sending them.
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from livemetrics import keys
from livemetrics.settings import Settings
from livemetrics.validation import Rejection
from producers.gateway.delivery import DeliveryUnavailable
from producers.gateway.ingest import ClientInfo, ingest, parse_body
from producers.gateway.providers import stripe

MAX_WEBHOOK_BYTES = 256 * 1024  # Stripe's events are a few KB; a larger body is not from Stripe
_NO_AGENT = ("", "", "", False)  # a provider is no browser and no bot: never flags the customer's session


def _answer(status: int, body: dict, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers or None)


def provider_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    secrets: dict[str, tuple[keys.KeyRecord, str]] = {}  # unsealed signing secrets, per live record

    def signing_secret(registry: keys.KeyRegistry, endpoint_id: str) -> tuple[keys.KeyRecord, str] | None:
        rec = registry.authenticate_id(endpoint_id)
        if rec is None or rec.kind != "provider" or rec.label != "stripe":
            return None
        cached = secrets.get(endpoint_id)
        if cached is None or cached[0] is not rec:
            secret = keys.unseal(rec, settings.key_encryption_key.get_secret_value())
            if secret is None:
                return None
            cached = secrets[endpoint_id] = (rec, secret)
        return cached

    @router.post(
        "/v1/providers/stripe/{endpoint_id}",
        include_in_schema=True,
        responses={
            400: {"description": "bad or stale Stripe-Signature, or not JSON"},
            404: {"description": "no such endpoint (unknown or revoked)"},
            413: {"description": f"body over {MAX_WEBHOOK_BYTES} bytes"},
            422: {"description": "a handled event type the contract cannot take; `error` says why"},
            503: {
                "description": "Kafka cannot confirm delivery, or the gateway has not read its keys yet; Stripe retries"
            },
        },
    )
    async def stripe_webhook(endpoint_id: str, request: Request):
        """A Stripe webhook delivery (payment_intent.payment_failed / .succeeded, charge.failed)."""
        found = signing_secret(request.app.state.registry, endpoint_id)
        if found is None and not getattr(request.app.state.registry, "ready", True):  # keys not read yet
            return _answer(503, {"error": "the gateway has not read its keys yet: retry"}, **{"Retry-After": "5"})
        if found is None:
            return _answer(404, {"error": "no such Stripe endpoint (unknown or revoked)"})
        rec, secret = found
        # Gathered, then joined once: `body += chunk` copied the body so far for each chunk, so a body sent a
        # byte a TCP segment cost its square (a 256 KiB one ~3.5 s of the event loop before its signature was
        # even checked).
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_WEBHOOK_BYTES:
                return _answer(413, {"error": f"body over {MAX_WEBHOOK_BYTES} bytes"})
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            stripe.verify(
                body, request.headers.get("stripe-signature"), secret, time.time(), settings.signature_tolerance_s
            )
        except stripe.SignatureError as exc:
            return _answer(400, {"error": str(exc)})
        try:
            event = json.loads(body)
            mapped = stripe.to_event(rec.seller_id, event) if isinstance(event, dict) else None
        except ValueError as exc:
            return _answer(422 if not isinstance(exc, json.JSONDecodeError) else 400, {"error": str(exc)})
        except RecursionError:  # JSON nested past the decoder's limit (a 500 before)
            return _answer(400, {"error": "the body is JSON nested too deeply to be a Stripe event"})
        if mapped is None:
            return _answer(200, {"ignored": str(event.get("type") if isinstance(event, dict) else "not an event")})
        now_ms = time.time_ns() // 1_000_000
        # Stripe retries for up to three days: what arrives later than the live clock bound is history only.
        late = now_ms - mapped["ts"] > settings.max_clock_skew_s * 1000
        raw = json.dumps(mapped).encode()
        client = ClientInfo(
            seller_id=rec.seller_id, ip=None, user_agent="", backfill=late, source="stripe", agent=_NO_AGENT
        )
        parsed = parse_body(raw)
        result = ingest(
            raw,
            client,
            settings,
            parsed,
            received_at=now_ms,
            salts=request.app.state.ip_salts,
            limits=request.app.state.topic_limits,
        )
        if result.rejected:
            rej: Rejection = result.rejected[0]
            return _answer(422, {"error": rej.error})
        try:
            await request.app.state.delivery.send(result.records, len(result.records))
        except DeliveryUnavailable as exc:
            return _answer(503, {"error": f"not stored yet, retry: {exc}"}, **{"Retry-After": "5"})
        return _answer(
            200, {"accepted": 1, "event_id": mapped["event_id"], "type": mapped["type"], "history_only": late}
        )

    return router
