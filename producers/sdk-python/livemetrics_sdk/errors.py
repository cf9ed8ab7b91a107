"""What a call can raise. Everything else the gateway answers is in ``SendResult``."""

from __future__ import annotations


class LivemetricsError(Exception):
    """The gateway answered with a status that no retry can change; ``str()`` says what it said."""

    def __init__(self, status: int, error: str):
        self.status = status
        self.error = error  # the gateway's own words (its JSON ``error``, else the body's text)
        super().__init__(f"the livemetrics gateway answered {status}: {error}")


class KeyRefused(LivemetricsError):
    """401 or 403: an unknown, revoked or wrong key, a bad signature, a browser key from an origin it does
    not allow, or an event type or backfill the key may not send. Fix the key or its settings, not the call."""


class GatewayError(LivemetricsError):
    """Another 4xx (other than 413, 422 and 429, which ``send`` turns into rejected or retried events):
    the request itself is wrong, e.g. a URL that is not a livemetrics gateway (404)."""
