"""deploy/clickhouse/users.xml: a profile that lets its users change settings (readonly 2, which BI tools
need) must not let them change the limits it sets: every limit it names has a `readonly` constraint
(ClickHouse's settings constraints), else `SET max_memory_usage = 0` lifts it on the shared server."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

USERS = Path(__file__).resolve().parents[3] / "deploy" / "clickhouse" / "users.xml"


def test_profiles_that_allow_settings_changes_fix_their_limits():
    profiles = ET.fromstring(USERS.read_text()).find("profiles")
    checked = 0
    for profile in profiles:
        settings = {e.tag: (e.text or "").strip() for e in profile if e.tag != "constraints"}
        if settings.get("readonly") != "2":
            continue
        checked += 1
        constraints = profile.find("constraints")
        fixed = {c.tag for c in constraints} if constraints is not None else set()
        limits = {name for name in settings if name.startswith("max_")}
        assert limits, profile.tag
        assert limits <= fixed, (profile.tag, sorted(limits - fixed))
        for name in limits:
            assert constraints.find(name).find("readonly") is not None, (profile.tag, name)
    assert checked >= 1  # livemetrics_analyst
