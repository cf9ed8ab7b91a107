"""Access on a ClickHouse server: the application's grants, the analyst and BI roles, and one
row-policy-restricted login per seller (``clickhouse/bi/*.sql``, the one source of this SQL;
deploy/clickhouse/access.sql is rendered from it). Refuses embedded chdb, which has no access control."""

from __future__ import annotations

import re
from importlib import resources

from clickhouse.client import get_client
from clickhouse.migrate import statements
from livemetrics.settings import Settings

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SELLER_ROLES = ("livemetrics_bi_reader", "livemetrics_analyst")
DEPLOY_DATABASE = "livemetrics"
DEPLOY_HEADER = """\
-- GENERATED from clickhouse/bi/app_access.sql and clickhouse/bi/reader_role.sql for the database
-- `livemetrics` by `python -m clickhouse.bi deploy-sql > deploy/clickhouse/access.sql`; edit those, not this
-- (tests/integration/test_clickhouse_bi_access.py fails when they differ). Run once as an admin after
-- `livemetrics migrate`: clickhouse-client --multiquery < deploy/clickhouse/access.sql. Seller logins:
-- python -m clickhouse.bi seller <seller_id> <user> <password> [--analyst] (docs/bi.md).
"""


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(name: str, settings: Settings, **values: str) -> list[str]:
    sql = resources.files("clickhouse.bi").joinpath(f"{name}.sql").read_text()
    for k, v in values.items():
        sql = sql.replace("{" + k + "}", v)
    return statements(sql, settings)


def apply(settings: Settings, stmts: list[str]) -> None:
    if settings.clickhouse_embedded:
        raise RuntimeError("BI roles and row policies are for ClickHouse servers; embedded chdb has no access control")
    c = get_client(settings)
    for s in stmts:
        c.command(s)


def app_access(settings: Settings) -> list[str]:
    return render("app_access", settings)


def reader_role(settings: Settings) -> list[str]:
    return render("reader_role", settings)


def seller_access(
    settings: Settings, seller_id: str, user: str, password: str, role: str = "livemetrics_bi_reader"
) -> list[str]:
    if not _IDENT.match(user):
        raise ValueError(f"BI user name {user!r} must be lower-case letters, digits and _")
    if role not in SELLER_ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(SELLER_ROLES)}")
    return render(
        "seller_access", settings, user=user, password=_quote(password), seller_id=_quote(seller_id), role=role
    )


def deploy_sql() -> str:
    """deploy/clickhouse/access.sql: the application's grants, the analyst and BI roles and the one
    permissive all-rows policy, for the database ``livemetrics``."""
    s = Settings(clickhouse_database=DEPLOY_DATABASE)
    return DEPLOY_HEADER + "".join(f"{stmt};\n" for stmt in app_access(s) + reader_role(s))
