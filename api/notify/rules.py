"""Per-channel alert rules (pure): which alert kinds go to the channel, a minimum amount for payment
failures, and quiet hours in the seller's time zone (a delivery that falls inside waits for their end;
several that waited reach an email channel as one digest)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import msgspec

KINDS = ("payment_failed", "error_spike", "traffic_dropped")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Rules(msgspec.Struct, omit_defaults=True):
    kinds: list[str] = []  # empty: every kind
    min_amount: str = ""  # a decimal string; payment failures of less are not sent ("" : all)
    quiet_start: str = ""  # "HH:MM" in tz; both empty: no quiet hours
    quiet_end: str = ""
    tz: str = "UTC"


class RuleError(ValueError):
    """Why rules are refused (the field and what is wrong)."""


def check(rules: Rules) -> Rules:
    unknown = [k for k in rules.kinds if k not in KINDS]
    if unknown:
        raise RuleError(f"kinds: unknown {', '.join(map(repr, unknown))}; one of {', '.join(KINDS)}")
    if rules.min_amount:
        try:
            amount = Decimal(rules.min_amount)
        except InvalidOperation:
            raise RuleError(f"min_amount: {rules.min_amount!r} is not a decimal number such as 25.00") from None
        if not amount.is_finite() or amount < 0:
            raise RuleError("min_amount: must be a number of at least 0")
    if bool(rules.quiet_start) != bool(rules.quiet_end):
        raise RuleError("quiet_start and quiet_end: give both (HH:MM) or neither")
    for name in ("quiet_start", "quiet_end"):
        value = getattr(rules, name)
        if value and not _HHMM.match(value):
            raise RuleError(f"{name}: {value!r} is not a time of day as HH:MM (24 h)")
    if rules.quiet_start and rules.quiet_start == rules.quiet_end:
        raise RuleError("quiet_start and quiet_end: the same time would be no quiet hours or all day")
    # The names available_timezones() lists, not whatever ZoneInfo opens: ZoneInfo("Europe") raised
    # IsADirectoryError (a 500 for PUT .../rules), an overlong name OSError.
    if rules.tz not in _zones():
        raise RuleError(f"tz: unknown time zone {rules.tz[:100]!r}; use an IANA name such as Europe/Berlin")
    return rules


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def wants(rules: Rules | None, alert: dict[str, Any]) -> bool:
    """Whether the alert goes to a channel with these rules. A payment failure whose amount is unknown is
    sent (nothing is held back for want of a number)."""
    if rules is None:
        return True
    kind = str(alert.get("kind") or "")
    if rules.kinds and kind not in rules.kinds:
        return False
    if rules.min_amount and kind == "payment_failed":
        try:
            amount = Decimal(str((alert.get("order") or {}).get("amount")))
        except (InvalidOperation, ValueError):
            return True
        return not amount.is_finite() or amount >= Decimal(rules.min_amount)
    return True


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def quiet_until(rules: Rules | None, now: datetime) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (UTC), or None when it is not quiet. A window may cross
    midnight (22:00-07:00); its end is the next wall-clock ``quiet_end`` in the zone (DST included)."""
    if rules is None or not rules.quiet_start:
        return None
    zone = ZoneInfo(rules.tz)
    local = now.astimezone(zone)
    start, end, minute = _minutes(rules.quiet_start), _minutes(rules.quiet_end), local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    day = local.date() if minute < end else local.date() + timedelta(days=1)
    wall = datetime(day.year, day.month, day.day, end // 60, end % 60)
    return wall.replace(tzinfo=zone).astimezone(UTC)
