"""The access SQL (docs/security.md): one source (clickhouse/bi/, deploy's file rendered from it), every
statement parsed by ClickHouse itself, and the row policies of all of it together leave a seller's
login unable to read another seller's rows.

Embedded chdb cannot apply this SQL: clickhouse-local (what chdb embeds) has no writable access storage
(CREATE ROLE/USER/ROW POLICY: ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND) and no impersonation (EXECUTE AS),
and its one user is the default user. So ClickHouse parses and normalises each statement here
(``formatQuerySingleLine``), evaluates each policy's condition on sample rows, and the test combines the
policies by ClickHouse's documented rule: a row is visible to a user when one of the PERMISSIVE policies
that apply to the user allows it AND every RESTRICTIVE one does (docs/security.md, BI access)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from clickhouse.bi.access import app_access, deploy_sql, reader_role, seller_access
from clickhouse.client import get_client
from clickhouse.migrate import statements

pytestmark = pytest.mark.integration
DEPLOY_SQL = Path(__file__).resolve().parents[2] / "deploy" / "clickhouse" / "access.sql"
SELLERS = {"bi_shop_a": ("shop-a", "livemetrics_bi_reader"), "an_shop_b": ("shop-b", "livemetrics_analyst")}
_POLICY = re.compile(
    r"^CREATE ROW POLICY (?:IF NOT EXISTS )?(\S+) ON (.+?)(?: AS (PERMISSIVE|RESTRICTIVE))?"
    r"(?: FOR SELECT)? USING (.+) TO (.+)$"
)


@dataclass
class Policy:
    name: str
    tables: list[str]
    restrictive: bool
    condition: str
    to: list[str]  # users/roles, or ["ALL"]


def normalised(client, stmt: str) -> str:
    """ClickHouse's own parse of a statement, printed back on one line (raises on a syntax error)."""
    return client.query("SELECT formatQuerySingleLine({q:String})", parameters={"q": stmt}).result_rows[0][0]


def all_access_sql(settings) -> list[str]:
    stmts = app_access(settings) + reader_role(settings)
    for user, (seller, role) in SELLERS.items():
        stmts += seller_access(settings, seller, user, "pw-" + user, role=role)
    return stmts


def policies(client, stmts: list[str]) -> list[Policy]:
    out = []
    for stmt in stmts:
        line = normalised(client, stmt)
        if line.startswith("CREATE ROW POLICY"):
            m = _POLICY.match(line)
            assert m, line
            name, tables, kind, cond, to = m.groups()
            out.append(
                Policy(
                    name,
                    [t.strip() for t in tables.split(",")],
                    kind == "RESTRICTIVE",
                    cond,
                    [x.strip() for x in to.split(",")],
                )
            )
    return out


def roles_of(client, stmts: list[str]) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    for stmt in stmts:
        line = normalised(client, stmt)
        if m := re.match(r"^CREATE USER (?:IF NOT EXISTS )?(\S+) .*DEFAULT ROLE (\S+)", line):
            roles.setdefault(m.group(1), set()).add(m.group(2))
        elif m := re.match(r"^GRANT (\w+) TO (\S+)$", line):
            roles.setdefault(m.group(2), set()).add(m.group(1))
    return roles


def visible(client, pols: list[Policy], roles: dict[str, set[str]], user: str, table: str, seller: str) -> bool:
    """ClickHouse's rule for one row of ``seller`` in ``table`` as seen by ``user`` (row policies exist)."""
    names = {user} | roles.get(user, set())
    mine = [p for p in pols if table in p.tables and ("ALL" in p.to or names & set(p.to))]

    def holds(p: Policy) -> bool:
        return bool(
            client.query(
                f"SELECT toBool({p.condition}) FROM (SELECT {{s:String}} AS seller_id)", parameters={"s": seller}
            ).result_rows[0][0]
        )

    return any(holds(p) for p in mine if not p.restrictive) and all(holds(p) for p in mine if p.restrictive)


def test_deploy_access_sql_is_rendered_from_clickhouse_bi():
    assert DEPLOY_SQL.read_text() == deploy_sql(), (
        "run: python -m clickhouse.bi deploy-sql > deploy/clickhouse/access.sql"
    )


def test_clickhouse_parses_every_access_statement(settings):
    client = get_client(settings)
    deploy = statements(DEPLOY_SQL.read_text(), settings)
    stmts = all_access_sql(settings) + deploy
    assert len(stmts) >= 20 and len(deploy) >= 10
    for stmt in stmts:
        assert normalised(client, stmt)  # a syntax error raises
    with pytest.raises(Exception, match="Syntax error"):
        normalised(client, "CREATE ROW POLICY p ON t USING 1 AS PERMISSIVE TO AL L")


def test_a_sellers_login_reads_only_its_sellers_rows_and_the_application_reads_all(settings):
    client = get_client(settings)
    stmts = all_access_sql(settings) + statements(DEPLOY_SQL.read_text(), settings)
    pols, roles = policies(client, stmts), roles_of(client, stmts)
    db = settings.clickhouse_database
    tables = [
        f"{db}.{t}"
        for t in (
            "events",
            "rollup_traffic_hourly",
            "rollup_pages_hourly",
            "rollup_payments_hourly",
            "payment_errors",
            "payment_error_status",
        )
    ]
    for table in tables:
        for user, (own, _) in SELLERS.items():
            for seller in ("shop-a", "shop-b", "shop-c"):
                assert visible(client, pols, roles, user, table, seller) == (seller == own), (user, table, seller)
        assert all(visible(client, pols, roles, "livemetrics_app", table, s) for s in ("shop-a", "shop-b"))


def test_the_only_permissive_policy_is_the_all_rows_one(settings):
    """A permissive per-seller policy would be OR-ed with `USING 1` and show every seller (the old
    deploy/clickhouse/access.sql); the check below sees exactly that when one is added."""
    client = get_client(settings)
    stmts = all_access_sql(settings)
    pols = policies(client, stmts)
    permissive = [p for p in pols if not p.restrictive]
    assert [(p.condition, p.to) for p in permissive] == [("1", ["ALL"])]
    # The old deploy/clickhouse/access.sql: its analyst's only policy was this permissive one.
    db = settings.clickhouse_database
    old = [
        f"CREATE ROW POLICY IF NOT EXISTS acme_home_only ON {db}.events FOR SELECT USING seller_id = 'acme-home' "
        "TO analyst_acme_home"
    ]
    widened = policies(client, reader_role(settings) + old)
    assert visible(client, widened, {}, "analyst_acme_home", f"{db}.events", "shop-b")  # every seller's rows
