"""Every table a BI login can read through, directly or behind a view, carries the seller's restrictive
row policy (docs/security.md, BI access). Derived from what ClickHouse itself stores after the
migrations (system.tables' view queries) and from the rendered access SQL, so a new bi_* view over a
table without a policy (say, the sessions) fails here instead of showing every seller's rows."""

from __future__ import annotations

import re

import pytest

from clickhouse.bi.access import app_access, reader_role, seller_access
from clickhouse.client import get_client
from clickhouse.migrate import migrate
from livemetrics.contract import PII_COLUMNS

pytestmark = pytest.mark.integration


def granted_objects(stmts: list[str], role: str) -> set[str]:
    """``db.table`` objects a role gets SELECT on (whole or some columns)."""
    out = set()
    for s in stmts:
        m = re.match(r"^GRANT SELECT(?:\([^)]*\))? ON (\S+) TO (\S+)$", " ".join(s.split()))
        if m and m.group(2) == role:
            out.add(m.group(1))
    return out


def test_every_table_behind_what_a_bi_login_reads_has_the_sellers_restrictive_policy(settings):
    migrate(settings)
    db, c = settings.clickhouse_database, get_client(settings)
    views = dict(
        c.query(
            "SELECT name, as_select FROM system.tables WHERE database = {db:String} AND engine = 'View'",
            parameters={"db": db},
        ).result_rows
    )
    stmts = app_access(settings) + reader_role(settings)
    policy = " ".join(" ".join(s.split()) for s in seller_access(settings, "shop-a", "bi_shop_a", "pw"))
    m = re.search(r"CREATE ROW POLICY IF NOT EXISTS \S+ ON (.+?) USING seller_id = 'shop-a' AS RESTRICTIVE", policy)
    assert m, policy
    covered = {t.strip() for t in m.group(1).split(",")}
    for role in ("livemetrics_bi_reader", "livemetrics_analyst"):
        readable = granted_objects(stmts, role)
        assert readable, role
        behind = set()
        for obj in readable:
            name = obj.split(".", 1)[1]
            if name in views:  # a view: the tables it reads (views are SQL SECURITY INVOKER)
                tables = set(re.findall(rf"\b{re.escape(db)}\.(\w+)", views[name]))
                assert tables, (name, views[name])
                behind |= {f"{db}.{t}" for t in tables}
            else:
                behind.add(obj)
        assert behind <= covered, (role, sorted(behind - covered))


def test_no_bi_view_has_a_personal_data_column(settings):
    migrate(settings)
    db, c = settings.clickhouse_database, get_client(settings)
    cols = c.query(
        "SELECT table, name FROM system.columns WHERE database = {db:String} AND table LIKE 'bi\\\\_%'",
        parameters={"db": db},
    ).result_rows
    assert {t for t, _ in cols} >= {"bi_events", "bi_payment_errors", "bi_traffic_hourly"}
    assert not [(t, n) for t, n in cols if n in PII_COLUMNS or n in ("ip", "user_agent")]
