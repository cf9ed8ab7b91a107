"""The dashboard's day ranges start when the day starts in the chosen zone, DST days too (H1 red team:
history and payment-error filters asked for whole days with the offset of the day's noon, an hour off on
every day the clocks change, twice a year in Europe and the US). `localMidnight` in
api/dashboard/js/history.js, run under Node, against Python's zoneinfo for every day of 2026 in zones that
change at 02:00, at midnight (both ways), by half an hour, or never."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.support import tracker_js

HISTORY_JS = Path(__file__).resolve().parents[3] / "api" / "dashboard" / "js" / "history.js"
ZONES = ["Europe/Berlin", "America/New_York", "America/Santiago", "America/Havana", "Australia/Lord_Howe", "Asia/Tokyo"]
DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]


def day_start(day: date, tz: str) -> datetime:
    """The first instant whose local date is ``day`` (clocks change on the quarter hour)."""
    t = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=30)
    while t.astimezone(ZoneInfo(tz)).date() < day:
        t += timedelta(minutes=15)
    return t


def test_every_day_starts_at_its_first_instant_in_every_zone():
    script = (
        f"import({json.dumps(HISTORY_JS.as_uri())}).then((m) => console.log(JSON.stringify("
        f"{json.dumps(ZONES)}.map((tz) => {json.dumps([d.isoformat() for d in DAYS])}"
        ".map((d) => m.localMidnight(d, tz))))))"
    )
    out = subprocess.run([tracker_js.tool("node"), "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    wrong = [
        (tz, day.isoformat(), start)
        for tz, starts in zip(ZONES, got, strict=True)
        for day, start in zip(DAYS, starts, strict=True)
        if datetime.fromisoformat(start) != day_start(day, tz) or not start.startswith(f"{day.isoformat()}T00:00:00")
    ]
    assert wrong == []
